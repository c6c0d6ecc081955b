"""The reconcile loop: oldest first, one failure never stops a pass, wakes on demand."""

from __future__ import annotations

import threading
from pathlib import Path

from strato.controlplane import ReconcileLoop
from strato.store.metadata import MetadataStore, ResourceRecord
from tests.helpers import wait_until


class Recorder:
    kind = "Thing"

    def __init__(self, fail: set[str] | None = None):
        self.fail = fail or set()
        self.seen: list[str] = []
        self.passes = 0
        self.called = threading.Event()

    def begin_pass(self) -> None:
        self.passes += 1

    def reconcile(self, record: ResourceRecord) -> None:
        self.seen.append(record.name)
        self.called.set()
        if record.name in self.fail:
            raise RuntimeError("boom")


def make_store(tmp_path: Path) -> MetadataStore:
    store = MetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    for name in ("first", "broken", "last"):
        store.create("Thing", name, {}, state="Pending", reason="Created", message="")
    store.create("Other", "ignored", {}, state="Pending", reason="Created", message="")
    done = store.create("Thing", "done", {}, state="Completed", reason="Created", message="", active=False)
    assert not done.active
    return store


def test_one_failure_does_not_stop_the_pass(tmp_path: Path) -> None:
    recorder = Recorder(fail={"broken"})
    loop = ReconcileLoop(make_store(tmp_path), [recorder])
    assert loop.run_once() == 1
    assert recorder.seen == ["first", "broken", "last"]  # oldest first; inactive and unknown kinds skipped
    assert recorder.passes == 1 and loop.passes == 1


def test_pass_metrics_are_reported(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    loop = ReconcileLoop(
        make_store(tmp_path),
        [Recorder(fail={"broken"})],
        on_pass=lambda seconds, n, failures: seen.append((n, failures)),
    )
    loop.run_once()
    assert seen == [(4, 1)]


def test_wake_runs_a_pass_without_waiting_for_the_tick(tmp_path: Path) -> None:
    recorder = Recorder()
    loop = ReconcileLoop(make_store(tmp_path), [recorder], tick_interval=3600)
    loop.start()
    try:
        wait_until(lambda: loop.passes >= 1, 30, what="first pass")
        loop.wake()
        wait_until(lambda: loop.passes >= 2, 30, what="a pass after wake")  # an hour-long tick would time out
    finally:
        loop.stop()
