"""The metadata store's contract, on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from strato.errors import AlreadyExists, NotFound
from strato.store.metadata import MetadataStore, MetricPoint, Transition


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MetadataStore:
    url = f"sqlite:///{tmp_path / 'meta.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    s = MetadataStore(url)
    if request.param == "postgres":  # one database per session: start each test empty
        for record in s.list():
            s.delete(record.uid)
    yield s
    s.close()


def test_create_get_and_duplicate_name(store: MetadataStore) -> None:
    record = store.create("TrainingJob", "iris", {"a": 1}, state="Pending", reason="Created", message="stored")
    got = store.get("TrainingJob", "iris")
    assert got.uid == record.uid and got.spec == {"a": 1} and got.state == "Pending" and got.active
    with pytest.raises(AlreadyExists, match="TrainingJob 'iris' already exists"):
        store.create("TrainingJob", "iris", {}, state="Pending", reason="Created", message="")
    # The same name under another kind is a different resource.
    store.create("Endpoint", "iris", {}, state="Pending", reason="Created", message="")


def test_missing_resource_names_kind_and_name(store: MetadataStore) -> None:
    with pytest.raises(NotFound, match="TrainingJob 'nope' not found"):
        store.get("TrainingJob", "nope")


def test_status_transitions_are_recorded_with_reasons(store: MetadataStore) -> None:
    record = store.create("TrainingJob", "j", {}, state="Pending", reason="Created", message="stored")
    store.update_status(record.uid, {"attempt": 1}, Transition("Running", "TaskStarted", "go"))
    store.update_status(record.uid, {"attempt": 1, "log_offset": 5})  # no state change: no event
    store.update_status(record.uid, {"attempt": 1}, Transition("Running", "Again"))  # same state: no event
    store.update_status(
        record.uid,
        {"attempt": 1},
        Transition("Uploading", "Phase", "up", at=5.0),
        Transition("Completed", "Completed", "done"),
        active=False,
        metrics=[MetricPoint("loss", 0.1, None, 6.0)],
    )
    events = store.events(record.uid)
    assert [(e.state, e.reason, e.message) for e in events] == [
        ("Pending", "Created", "stored"),
        ("Running", "TaskStarted", "go"),
        ("Uploading", "Phase", "up"),
        ("Completed", "Completed", "done"),
    ]
    assert events[2].at == 5.0 and events[3].at >= events[1].at
    assert [p.value for p in store.metrics(record.uid)] == [0.1]
    assert store.get_by_uid(record.uid).state == "Completed"
    assert store.list("TrainingJob", active=True) == []
    assert store.get_by_uid(record.uid).status == {"attempt": 1}


def test_desired_and_status_do_not_overwrite_each_other(store: MetadataStore) -> None:
    record = store.create("TrainingJob", "j", {}, state="Running", reason="Created", message="")
    store.set_desired(record.uid, stop=True)
    store.update_status(record.uid, {"log_offset": 10})
    got = store.get_by_uid(record.uid)
    assert got.desired == {"stop": True} and got.status == {"log_offset": 10}


def test_metrics_round_trip_in_order(store: MetadataStore) -> None:
    record = store.create("TrainingJob", "j", {}, state="Running", reason="Created", message="")
    store.add_metrics(
        record.uid,
        [MetricPoint("loss", 0.5, 1, 10.0), MetricPoint("acc", 0.9, None, 11.0), MetricPoint("loss", 0.25, 2, 12.0)],
    )
    assert [(p.name, p.value, p.step) for p in store.metrics(record.uid, ["loss"])] == [
        ("loss", 0.5, 1),
        ("loss", 0.25, 2),
    ]
    assert len(store.metrics(record.uid)) == 3


def test_metric_points_resume_from_a_cursor(store: MetadataStore) -> None:
    """What the MLflow forwarder reads: points after the last one it sent, and counts per name so far."""
    record = store.create("TrainingJob", "j", {}, state="Running", reason="Created", message="")
    store.add_metrics(record.uid, [MetricPoint("loss", float(i), None, 10.0 + i) for i in range(5)])
    first = store.metrics_since(record.uid, 0, limit=3)
    assert [p.value for _, p in first] == [0.0, 1.0, 2.0]
    rest = store.metrics_since(record.uid, first[-1][0])
    assert [p.value for _, p in rest] == [3.0, 4.0]
    assert store.metric_counts(record.uid, first[-1][0]) == {"loss": 3}
    assert store.metrics_since(record.uid, rest[-1][0]) == []


def test_replace_spec_keeps_identity_and_history(store: MetadataStore) -> None:
    record = store.create("ApprovalPolicy", "p", {"gates": []}, state="Active", reason="Created", message="")
    changed = store.replace_spec(record.uid, {"gates": ["a >= 1"]}, {"generation": 2})
    assert (changed.uid, changed.spec, changed.status) == (record.uid, {"gates": ["a >= 1"]}, {"generation": 2})
    assert [e.reason for e in store.events(record.uid)] == ["Created"]
    with pytest.raises(NotFound):
        store.replace_spec("missing", {}, {})


def test_delete_removes_history_and_metrics(store: MetadataStore) -> None:
    record = store.create("TrainingJob", "j", {}, state="Running", reason="Created", message="")
    store.add_metrics(record.uid, [MetricPoint("loss", 1.0, None, 1.0)])
    store.delete(record.uid)
    with pytest.raises(NotFound):
        store.get_by_uid(record.uid)
    assert store.events(record.uid) == [] and store.metrics(record.uid) == []


def test_concurrent_writers_lose_nothing(store: MetadataStore) -> None:
    record = store.create("TrainingJob", "j", {}, state="Running", reason="Created", message="")
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(25):
                store.add_metrics(record.uid, [MetricPoint(f"w{n}", float(i), i, float(i))])
                store.create("TrainingJob", f"job-{n}-{i}", {}, state="Pending", reason="Created", message="")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.metrics(record.uid)) == 200
    assert len(store.list("TrainingJob")) == 201


def test_sqlite_concurrent_processes(tmp_path: Path) -> None:
    """Separate processes writing one SQLite file queue on the lock instead of failing."""
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    MetadataStore(url).close()
    script = (
        "import sys; from strato.store.metadata import MetadataStore\n"
        "s = MetadataStore(sys.argv[1])\n"
        "for i in range(40):\n"
        "    s.create('TrainingJob', f'p{sys.argv[2]}-{i}', {}, state='Pending', reason='C', message='')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, url, str(n)]) for n in range(4)]
    assert [p.wait(120) for p in procs] == [0, 0, 0, 0]
    assert len(MetadataStore(url).list()) == 160


def test_migrations_are_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    MetadataStore(url).create("TrainingJob", "kept", {}, state="Pending", reason="Created", message="")
    again = MetadataStore(url)  # upgrade to head a second time changes nothing
    assert again.get("TrainingJob", "kept").name == "kept"


def test_listeners_hear_committed_changes(store: MetadataStore) -> None:
    heard: list[str] = []
    store.add_listener(heard.append)
    record = store.create("TrainingJob", "j", {}, state="Pending", reason="Created", message="")
    store.update_status(record.uid, {}, Transition("Running", "TaskStarted"))
    assert heard == [record.uid]
