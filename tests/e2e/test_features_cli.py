"""``strato features`` as a user runs it: definitions from YAML and from Python, a lake table loaded with
``strato lake``, materialize, online reads, a push with an older time, revisions, and one-line errors."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from tests.e2e.cli import ControlPlane, error_line, json_out, ok

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "features"


def test_features_from_the_cli(tmp_path: Path, own_plane: Callable[..., ControlPlane]) -> None:
    plane = own_plane(tmp_path / "home")
    import sys

    sys.path.insert(0, str(EXAMPLES))
    from iris_data import iris_tables

    measurements, _ = iris_tables(datetime(2026, 1, 1, tzinfo=UTC))
    measurements.to_parquet(tmp_path / "measurements.parquet")
    ok(plane.cli("lake", "create", "iris_measurements", "--from", tmp_path / "measurements.parquet"))

    applied = ok(plane.cli("features", "apply", "-f", EXAMPLES / "features.yaml")).stdout
    assert "Entity flower created (revision 1)" in applied and "FeatureService iris_model created" in applied
    again = json_out(plane.cli("features", "apply", "-f", EXAMPLES / "features.yaml", "-o", "json"))
    assert isinstance(again, list) and {item["status"]["revision"] for item in again} == {1}

    # The same kind of definitions from a Python file.
    (tmp_path / "more.py").write_text(
        textwrap.dedent("""
        from strato import FeatureService
        sepals = FeatureService(name="sepals", features=["flower_measurements:sepal_length"])
    """)
    )
    assert "FeatureService sepals created" in ok(plane.cli("features", "apply", "-f", tmp_path / "more.py")).stdout

    done = json_out(plane.cli("features", "materialize", "2025-12-01T00:00:00Z", "2026-02-01T00:00:00", "-o", "json"))
    assert done == [{**done[0], "view": "flower_measurements", "rows": 150}]  # type: ignore[index]
    listed = json_out(plane.cli("features", "list", "-o", "json"))
    view = next(i for i in listed if i["kind"] == "FeatureView")  # type: ignore[union-attr]
    assert view["status"]["materialized"]["until"].startswith("2026-02-01")

    # 30 d TTL against the wall clock: the 2026-01-02 values have expired, so push fresh ones.
    now = pd.Timestamp.now(tz="UTC").isoformat()
    row = {"flower_id": 0, "event_timestamp": now, "sepal_length": 5.0, "sepal_width": 3.0,
           "petal_length": 1.5, "petal_width": 0.2}  # fmt: skip
    (tmp_path / "push.json").write_text(json.dumps([row]))
    assert (
        "online_written: 1"
        in ok(plane.cli("features", "push", "flower_measurements", "--data", tmp_path / "push.json")).stdout
    )
    older = {**row, "event_timestamp": "2026-01-05T00:00:00Z", "sepal_length": 9.9}
    (tmp_path / "older.json").write_text(json.dumps([older]))
    pushed = ok(plane.cli("features", "push", "flower_measurements", "--data", tmp_path / "older.json")).stdout
    assert "online_written: 0" in pushed and "online_skipped_older: 1" in pushed

    got = json_out(plane.cli("features", "get", "--service", "iris_model", "-e", "flower_id=0", "-e", "flower_id=1",
                             "-o", "json"))  # fmt: skip
    assert got["sepal_length"] == [5.0, None]  # type: ignore[index]
    assert got["petal_ratio"] == [1.5 / (0.2 + 0.1), None]  # type: ignore[index]

    revisions = json_out(plane.cli("features", "revisions", "featureview", "flower_measurements", "-o", "json"))
    assert [r["revision"] for r in revisions] == [1]  # type: ignore[union-attr]

    error_line(plane.cli("features", "get", "flower_measurements:petal", "-e", "flower_id=0"),
               "view 'flower_measurements' has no feature 'petal'")  # fmt: skip
    error_line(plane.cli("features", "apply", "-f", tmp_path / "missing.yaml"), "missing.yaml: no such file")
    (tmp_path / "bad.yaml").write_text("kind: FeatureView\nname: v\nentities: [flower]\nsource: lake://iris_measurements\n"
                                       "features: {sepal_length: float64}\nttl: 0s\n")  # fmt: skip
    error_line(plane.cli("features", "apply", "-f", tmp_path / "bad.yaml"), "ttl")
    error_line(plane.cli("features", "materialize", "yesterday", "2026-02-01"), "'yesterday' is not a time")
