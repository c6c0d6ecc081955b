"""A real control plane daemon per test (or per module), on a free port and a temporary home."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strato.client import Client
from strato.config import Settings, load_settings
from strato.server import daemon


@contextlib.contextmanager
def control_plane(home: Path, **flags: Any) -> Iterator[tuple[Settings, Client]]:
    """Tracking (the managed MLflow server, ~10 s of CPU to start) is off unless a test asks for it."""
    flags.setdefault("tracking", False)
    settings = load_settings(home=home, environ={}, port=0, tick_interval=0.2, **flags)
    info = daemon.start(settings)
    client = Client(info.url, settings.token_path.read_text().strip())
    try:
        yield settings, client
    finally:
        client.close()
        daemon.stop(settings)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[tuple[Settings, Client]]:
    with control_plane(tmp_path / "home") as running:
        yield running


@pytest.fixture(scope="module")
def shared_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Client]]:
    with control_plane(tmp_path_factory.mktemp("shared") / "home") as running:
        yield running

