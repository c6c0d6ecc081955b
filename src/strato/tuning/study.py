"""Optuna studies kept in Strato's own metadata database, so a restarted control plane finds every
trial it asked for (and its parameters, intermediate values and outcome) where it left them.

Optuna's RDB storage creates its tables (``studies``, ``trials``, ``trial_*``, ``study_*``,
``version_info``) next to Strato's. Both projects version their schema with Alembic in a table named
``alembic_version``; that table belongs to Strato's migrations, so Optuna's own Alembic bookkeeping is
skipped (Optuna finds the table already stamped and leaves it alone) and the Optuna schema version is
checked here instead. Hence the metadata store must be opened (migrated) before the first study.

On SQLite, Optuna's engine gets the same connection setup as Strato's (WAL, a 30 s busy timeout) and
begins every transaction ``IMMEDIATE``, so it queues for the write lock instead of failing with
"database is locked" when the API writes at the same moment.

Optuna is imported here only, lazily: ``strato --help`` and task processes never load it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Literal

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from strato.errors import StratoError
from strato.store.metadata.engine import configure_sqlite

if TYPE_CHECKING:
    import optuna

log = logging.getLogger("strato.tuning")


def study_name(uid: str) -> str:
    """One study per tuning job resource (a deleted and re-created job of the same name starts afresh)."""
    return f"strato-{uid}"


def optuna_url(database_url: str) -> str:
    url = make_url(database_url)
    if url.drivername == "postgresql":  # psycopg 3 is the driver Strato ships, as the metadata store
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


class Studies:
    """Opens, caches and deletes the studies of tuning jobs in one database."""

    def __init__(self, database_url: str):
        self.url = optuna_url(database_url)
        self._storage: optuna.storages.RDBStorage | None = None
        self._studies: dict[str, optuna.Study] = {}
        self._lock = threading.Lock()

    @property
    def storage(self) -> optuna.storages.RDBStorage:
        with self._lock:
            if self._storage is None:
                self._storage = _open_storage(self.url)
            return self._storage

    def open(self, name: str, direction: Literal["maximize", "minimize"]) -> optuna.Study:
        """The study ``name``, created (with ``direction``) on first use."""
        import optuna

        study = self._studies.get(name)
        if study is not None:
            return study
        storage = self.storage
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            study = optuna.create_study(study_name=name, storage=storage, direction=direction, load_if_exists=True)
        self._studies[name] = study
        return study

    def delete(self, name: str) -> None:
        import optuna

        self._studies.pop(name, None)
        with contextlib.suppress(KeyError):  # already gone
            optuna.delete_study(study_name=name, storage=self.storage)

    def close(self) -> None:
        with self._lock:
            if self._storage is not None:
                self._storage.engine.dispose()
                self._storage = None
            self._studies.clear()


def _open_storage(url: str) -> optuna.storages.RDBStorage:
    import optuna
    from optuna.storages._rdb import models

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()  # Optuna's warnings go to the control plane's log
    sqlite = make_url(url).get_backend_name() == "sqlite"
    probe = sa.create_engine(url)
    try:
        with probe.connect() as conn:
            inspector = sa.inspect(conn)
            if (
                not inspector.has_table("alembic_version")
                or not conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
            ):
                raise StratoError(
                    "the metadata database has no Strato schema yet; open the metadata store (which migrates it) "
                    "before Optuna's storage, so Optuna does not claim the alembic_version table"
                )
    finally:
        probe.dispose()
    engine_kwargs = {"connect_args": {"timeout": 30}} if sqlite else {"pool_pre_ping": True}
    storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, skip_compatibility_check=True)
    if sqlite:
        configure_sqlite(storage.engine)
        storage.engine.update_execution_options(sqlite_begin="IMMEDIATE")
        storage.engine.dispose()  # connections made so far lack the setup above
    with storage.engine.connect() as conn:
        version = conn.execute(sa.text("SELECT schema_version FROM version_info")).scalar()
    if version is not None and version != models.SCHEMA_VERSION:
        raise StratoError(
            f"the Optuna tables in the metadata database have schema version {version}, but the installed "
            f"optuna {optuna.__version__} expects {models.SCHEMA_VERSION}; install the optuna version that "
            "created them (see pyproject.toml) or migrate them"
        )
    return storage
