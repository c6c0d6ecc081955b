"""``strato lake`` as a user runs it: create from CSV, a refused mismatched append (one line), explicit
evolution, time travel, history and schema as JSON."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tests.e2e.cli import base_env, error_line, json_out, ok, run_cli


def test_lake_tables_from_the_cli(tmp_path: Path) -> None:
    env = base_env(STRATO_HOME=str(tmp_path / "home"))
    pd.DataFrame({"id": [1, 2], "value": [1.0, 2.0]}).to_csv(tmp_path / "first.csv", index=False)
    pd.DataFrame({"id": [3], "value": [3.0], "source": ["web"]}).to_parquet(tmp_path / "more.parquet")

    assert (
        "lake://events created (version 0)"
        in ok(run_cli("lake", "create", "events", "--from", tmp_path / "first.csv", env=env)).stdout
    )
    error_line(run_cli("lake", "append", "events", "--from", tmp_path / "more.parquet", env=env),
               "does not match lake table 'events'", "new column 'source' (string)", "--evolve")  # fmt: skip
    assert (
        "version 1"
        in ok(run_cli("lake", "append", "events", "--from", tmp_path / "more.parquet", "--evolve", env=env)).stdout
    )

    assert json_out(run_cli("lake", "read", "events", "--version", "0", "-o", "json", env=env)) == [
        {"id": 1, "value": 1.0}, {"id": 2, "value": 2.0},
    ]  # fmt: skip
    now = json_out(run_cli("lake", "read", "events", "-o", "json", env=env))
    assert isinstance(now, list) and sorted(row["id"] for row in now) == [1, 2, 3]
    history = json_out(run_cli("lake", "history", "events", "-o", "json", env=env))
    assert isinstance(history, list) and [h["version"] for h in history] == [1, 0]
    schema = json_out(run_cli("lake", "schema", "events", "-o", "json", env=env))
    assert schema == [
        {"name": "id", "type": "int64"},
        {"name": "value", "type": "double"},
        {"name": "source", "type": "string"},
    ]
    error_line(run_cli("lake", "read", "events", "--version", "9", env=env), "has no version 9 (versions 0 to 1)")
    error_line(run_cli("lake", "read", "nope", env=env), "no lake table 'nope'")
