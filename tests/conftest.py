"""Fixtures shared by every test directory: settings in a temporary home, and a fresh PostgreSQL
database per test session on the real server at 127.0.0.1:5432."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from strato.config import Settings, load_settings
from tests.s3_server import s3_store_url

__all__ = ["s3_store_url"]

POSTGRES_ADMIN_URL = os.environ.get("STRATO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path / "home", environ={}, tracking=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own on the real PostgreSQL server, dropped after the session."""
    import psycopg

    name = f"strato_test_{uuid.uuid4().hex[:10]}"
    admin = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {admin} ({exc}); .ci/run starts it")
    base = admin.rsplit("/", 1)[0]
    yield f"postgresql+psycopg://{base.removeprefix('postgresql://')}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def warm_pools() -> Iterator[Path]:
    """Warm pools of one test or module only (control planes started inside pass the directory to their
    tasks), stopped at the end: pools end themselves when idle, a test does not wait for that."""
    path = Path(tempfile.mkdtemp(prefix="sw-"))  # short: a Unix socket path has ~100 characters
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STRATO_WARM_DIR", str(path))
        try:
            yield path
        finally:
            for lock in path.glob("*.lock"):
                with contextlib.suppress(ValueError, ProcessLookupError):
                    os.kill(int(lock.read_text().strip()), signal.SIGKILL)
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def warm_dir() -> Iterator[Path]:
    with warm_pools() as path:
        yield path
