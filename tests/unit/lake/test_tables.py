"""Lake tables on real Delta tables: create, append, overwrite, upsert, time travel, history, schema
enforcement with a clear message, explicit evolution, lake:// addresses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from strato.errors import AlreadyExists, InvalidArgument, NotFound
from strato.lake.tables import LakeTables, parse_uri


@pytest.fixture
def lake(tmp_path: Path) -> LakeTables:
    return LakeTables(tmp_path / "lake")


def frame(ids: list[int], value: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "value": [value] * len(ids)})


def test_create_append_overwrite_and_read_back_any_version(lake: LakeTables) -> None:
    assert lake.create("events", frame([1, 2])) == 0
    assert lake.append("events", pa.Table.from_pandas(frame([3]), preserve_index=False)) == 1
    assert lake.overwrite("events", frame([9], 2.0)) == 2
    assert lake.read("events").to_pydict() == {"id": [9], "value": [2.0]}
    assert sorted(lake.read("events", version=1).column("id").to_pylist()) == [1, 2, 3]
    assert lake.read("events", version=0, columns=["id"]).column_names == ["id"]
    assert [h["operation"] for h in lake.history("events")][:3] == ["WRITE", "WRITE", "WRITE"]
    assert lake.schema("events") == [{"name": "id", "type": "int64"}, {"name": "value", "type": "double"}]


def test_time_travel_by_timestamp(lake: LakeTables) -> None:
    lake.create("prices", frame([1]))
    lake.append("prices", frame([2]))
    first = next(h for h in lake.history("prices") if h["version"] == 0)["timestamp"]  # milliseconds
    as_of = datetime.fromtimestamp(first / 1000, UTC)
    assert lake.read("prices", timestamp=as_of).column("id").to_pylist() == [1]
    assert sorted(lake.read("prices").column("id").to_pylist()) == [1, 2]


def test_upsert_updates_matches_and_inserts_the_rest(lake: LakeTables) -> None:
    lake.create("users", frame([1, 2], 1.0))
    lake.upsert("users", frame([2, 3], 5.0), keys=["id"])
    rows = lake.read("users").to_pandas().sort_values("id")
    assert rows.to_dict("list") == {"id": [1, 2, 3], "value": [1.0, 5.0, 5.0]}
    with pytest.raises(InvalidArgument, match="missing: key"):
        lake.upsert("users", frame([4]), keys=["key"])


def test_a_mismatched_write_is_refused_with_the_differences_and_evolution_is_explicit(lake: LakeTables) -> None:
    lake.create("events", frame([1]))
    wider = frame([2]).assign(source="web")
    with pytest.raises(InvalidArgument, match=r"new column 'source' \(string\).*evolve=True") as refused:
        lake.append("events", wider)
    assert "does not match lake table 'events'" in refused.value.message
    with pytest.raises(InvalidArgument, match="column 'value' is string, the table has double"):
        lake.append("events", pd.DataFrame({"id": [3], "value": ["x"]}))
    assert lake.version("events") == 0  # nothing was written
    assert lake.append("events", wider, evolve=True) == 1
    assert [c["name"] for c in lake.schema("events")] == ["id", "value", "source"]


def test_files_and_addresses(lake: LakeTables, tmp_path: Path) -> None:
    frame([1, 2]).to_csv(tmp_path / "in.csv", index=False)
    lake.create("from_csv", tmp_path / "in.csv")
    assert lake.read("from_csv").num_rows == 2
    lake.append("from_csv", frame([3]))
    assert lake.resolve("lake://from_csv") == (lake.uri("from_csv"), 1)
    assert lake.resolve("lake://from_csv@0")[1] == 0
    assert parse_uri("lake://a.b@12").version == 12
    with pytest.raises(InvalidArgument, match="lake://NAME@VERSION"):
        parse_uri("lake:/oops")
    with pytest.raises(NotFound, match=r"no version 7 \(versions 0 to 1\)"):
        lake.read("from_csv", version=7)
    with pytest.raises(NotFound, match="no lake table 'nope'"):
        lake.read("nope")
    with pytest.raises(AlreadyExists, match="already exists"):
        lake.create("from_csv", frame([1]))
