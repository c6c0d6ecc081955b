"""The feature store of a workspace, as the control plane runs it: definitions, the online store,
materialization (on demand and on each view's schedule), pushes, and training-dataset lineage."""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from strato.features.catalog import FeatureCatalog
from strato.features.definitions import FeatureDefinitions
from strato.features.feature_log import FeatureLog
from strato.features.materialize import Materializer, ViewResult
from strato.features.online import OnlineStore, open_online_store
from strato.features.online_features import OnlineFeatures
from strato.features.push import PushTarget, push
from strato.lake.tables import LakeTables
from strato.lineage import kinds
from strato.lineage.graph import Lineage
from strato.specs.base import ResourceSpec
from strato.specs.features import FeatureView
from strato.store.metadata import MetadataStore, ResourceRecord

log = logging.getLogger("strato.features")


class FeatureStoreService:
    def __init__(
        self,
        store: MetadataStore,
        lake: LakeTables,
        online_url: str,
        *,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.lake = lake
        self.online_url = online_url
        self.clock = clock
        self.definitions = FeatureDefinitions(store, lake)
        self._catalog: FeatureCatalog | None = None
        self._online: OnlineStore | None = None
        self._reader: OnlineFeatures | None = None
        self.feature_log = FeatureLog(lake, clock=clock)
        self._lock = threading.Lock()

    # Shared state --------------------------------------------------------------------------------
    def catalog(self) -> FeatureCatalog:
        """The definitions, cached until the next apply or delete through this service."""
        catalog = self._catalog
        if catalog is None:
            catalog = self._catalog = self.definitions.catalog()
        return catalog

    def _changed(self) -> None:
        self._catalog = None

    @property
    def online_store(self) -> OnlineStore:
        with self._lock:
            if self._online is None:
                self._online = open_online_store(self.online_url)
            return self._online

    @property
    def online(self) -> OnlineFeatures:
        if self._reader is None:
            self._reader = OnlineFeatures(self.online_store, self.catalog, clock=self.clock)
        return self._reader

    def materializer(self) -> Materializer:
        return Materializer(self.store, self.lake, self.online_store, self.catalog, clock=self.clock)

    # Definitions ---------------------------------------------------------------------------------
    def apply(self, spec: ResourceSpec) -> tuple[ResourceRecord, bool]:
        try:
            return self.definitions.apply(spec)
        finally:
            self._changed()

    def delete(self, kind: str, name: str) -> None:
        try:
            self.definitions.delete(kind, name)
            if kind == FeatureView.KIND:
                self.online_store.delete_view(name)
        finally:
            self._changed()

    # Data ----------------------------------------------------------------------------------------
    def materialize(
        self, start: Any, end: Any, views: builtins.list[str] | None = None, *, incremental: bool = False
    ) -> builtins.list[ViewResult]:
        return self.materializer().run(start, end, views, incremental=incremental)

    def push(self, view: str, rows: Any, to: PushTarget = "online") -> dict[str, Any]:
        return push(self.catalog(), self.lake, self.online_store, view, rows, to)

    def record_dataset(self, name: str, version: int, sources: builtins.list[dict[str, Any]]) -> None:
        """Lineage of a saved training dataset: every lake table version and feature view it was built from."""
        lineage = Lineage(self.store)
        dataset = (kinds.DATASET, f"lake://{name}@v{version}")
        lineage.node(*dataset, f"lake://{name}", table=name, version=version)
        for source in sources:
            table = (kinds.DATASET, f"lake://{source['table']}@v{source['version']}")
            lineage.node(*table, f"lake://{source['table']}", table=source["table"], version=source["version"])
            lineage.link(table, dataset, kinds.FEATURES_OF)
            if source.get("view"):
                view = (kinds.FEATURE_VIEW, source["view"])
                lineage.node(*view, source["view"])
                lineage.link(table, view, kinds.SOURCE_OF)
                lineage.link(view, dataset, kinds.FEATURES_OF)

    def close(self) -> None:
        self.feature_log.close()
        if self._online is not None:
            self._online.close()


class DefinitionKindService:
    """The generic API verbs (apply, get, list, delete) for one definition kind."""

    def __init__(self, kind: str, features: FeatureStoreService):
        self.kind = kind
        self.features = features

    def apply(self, spec: Any) -> tuple[ResourceRecord, bool]:
        return self.features.apply(spec)

    def get(self, name: str) -> ResourceRecord:
        return self.features.definitions.get(self.kind, name)

    def list(self) -> builtins.list[ResourceRecord]:
        return self.features.definitions.list(self.kind)

    def delete(self, name: str) -> None:
        self.features.delete(self.kind, name)

    def to_api(self, record: ResourceRecord) -> dict[str, Any]:
        return record.view()


class MaterializationReconciler:
    """Runs ``materialize-incremental`` for views with ``materialize_every``, each at most once at a time,
    in a thread of its own so a long materialization never holds up the reconcile loop."""

    kind = FeatureView.KIND

    def __init__(self, features: FeatureStoreService, *, spawn: Callable[[Callable[[], None]], None] | None = None):
        self.features = features
        self.spawn = spawn or (lambda work: threading.Thread(target=work, name="materialize", daemon=True).start())
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def begin_pass(self) -> None:
        pass

    def reconcile(self, record: ResourceRecord) -> None:
        spec = FeatureView.model_validate(record.spec)
        if spec.materialize_every is None or not spec.online:
            return
        last = (record.status.get("materialized") or {}).get("at") or record.status.get("schedule_failed_at") or 0
        if self.features.clock() - float(last) < spec.materialize_every:
            return
        with self._lock:
            if record.name in self._running:
                return
            self._running.add(record.name)
        self.spawn(lambda: self._run(record.name))

    def _run(self, name: str) -> None:
        try:
            self.features.materialize(None, None, [name], incremental=True)
        except Exception as exc:  # recorded on the view; the next period tries again
            log.warning("scheduled materialization of %s failed: %s", name, exc)
            record = self.features.store.get(FeatureView.KIND, name)
            status = {**record.status, "schedule_failed_at": self.features.clock(), "schedule_error": str(exc)}
            self.features.store.update_status(record.uid, status)
        finally:
            with self._lock:
                self._running.discard(name)
