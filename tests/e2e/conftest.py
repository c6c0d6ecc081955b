"""End-to-end fixtures: one control plane started with ``strato up`` on a free port in a temporary home
for the whole session (tests about the server's life cycle start their own)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.cli import ControlPlane, base_env, start_plane, stop_plane


@pytest.fixture(scope="session")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """One control plane for the whole e2e session."""
    running = start_plane(tmp_path_factory.mktemp("e2e") / "home")
    try:
        yield running
    finally:
        stop_plane(running)


@pytest.fixture
def own_plane() -> Iterator[Callable[..., ControlPlane]]:
    """``own_plane(home, *up_args, **env)`` starts a control plane for one test; each is stopped after it,
    even when the test fails half way."""
    homes: list[tuple[Path, dict[str, str]]] = []

    def start(home: Path, *up_args: str, **env: str) -> ControlPlane:
        env.setdefault("STRATO_TRACKING", "false")  # each MLflow server costs ~10 s of CPU to start
        homes.append((home, base_env(STRATO_HOME=str(home), **env)))
        return start_plane(home, *up_args, **env)

    yield start
    for home, env in homes:
        stop_plane(ControlPlane(home=home, url="", pid=0, env=env))
