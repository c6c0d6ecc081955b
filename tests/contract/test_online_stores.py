"""One contract, every online store backend: SQLite (a file per test) and Redis (the real server on
127.0.0.1:6379, a random key prefix per test), plus what happens when a Redis goes away and comes back."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strato.errors import InvalidArgument, Unavailable
from strato.features.online import OnlineStore, entity_key, open_online_store
from strato.features.online.base import decode_values, encode_values
from strato.features.online.redis import RedisOnlineStore
from strato.features.online.sqlite import SqliteOnlineStore
from tests.redis_server import RedisServer, redis_server

REDIS_URL = "redis://127.0.0.1:6379/0"
F = ["a", "b", "c"]


def shared_redis_or_skip() -> None:
    import redis

    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis listening on 127.0.0.1:6379 ({exc}); .ci/run starts one")


def drop_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/nested/dir/online.db"
        return
    shared_redis_or_skip()
    prefix = f"strato-test-{uuid.uuid4().hex}"
    yield f"{REDIS_URL}?prefix={prefix}"
    drop_prefix(prefix)


@pytest.fixture
def store(store_url: str) -> Iterator[OnlineStore]:
    with open_online_store(store_url) as s:
        yield s


# ---- construction -------------------------------------------------------------------------------


def test_backend_is_chosen_by_scheme(tmp_path: Path) -> None:
    store = open_online_store(f"sqlite:///{tmp_path}/a/b/online.db")
    assert type(store) is SqliteOnlineStore
    assert (tmp_path / "a" / "b" / "online.db").is_file(), "the store creates its parent directories"
    assert type(open_online_store(str(tmp_path / "bare.db"))) is SqliteOnlineStore
    redis_store = open_online_store("redis://:s3cret@127.0.0.1:6379/2?prefix=team")
    assert type(redis_store) is RedisOnlineStore
    assert redis_store.url == "redis://127.0.0.1:6379/2?prefix=team"
    assert open_online_store("redis://localhost").url == "redis://localhost:6379/0"


def test_sqlite_file_is_in_wal_mode(tmp_path: Path) -> None:
    import sqlite3

    store = open_online_store(f"sqlite:///{tmp_path}/online.db")
    store.write("v", ["k"], [1.0], [[1]], features=["x"])
    with contextlib.closing(sqlite3.connect(tmp_path / "online.db")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    store.close()
    with pytest.raises(Unavailable, match="is closed"):
        store.read("v", ["k"])


def test_unknown_scheme_lists_known_ones() -> None:
    with pytest.raises(InvalidArgument) as e:
        open_online_store("redsi://127.0.0.1:6379/0")
    assert e.value.message == (
        "unknown online store scheme 'redsi'; did you mean 'redis'? (known: redis, rediss, sqlite)"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://relative.db", "should look like sqlite:///path/online.db"),
        ("sqlite:///:memory:", "needs a file path"),
        ("redis://127.0.0.1:6379/0?prefx=a", "online store URL option 'prefx' is not known (known: prefix)"),
        ("redis://127.0.0.1:6379/zero", "numeric port and db"),
        ("redis://127.0.0.1:6379/0?prefix=", "prefix is empty"),
    ],
)
def test_bad_urls_say_what_to_fix(url: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        open_online_store(url)


# ---- entity keys ----------------------------------------------------------------------------------


def test_entity_key_is_canonical_json() -> None:
    assert entity_key([1]) == "[1]"
    assert entity_key(["1"]) == '["1"]'
    assert entity_key([1]) != entity_key(["1"])
    assert entity_key((1001, "paris")) == '[1001,"paris"]'
    assert entity_key([1001, "paris"]) != entity_key(["paris", 1001])
    assert entity_key(["1", "2"]) != entity_key(["1,2"])
    assert entity_key(['ü "q"']) == '["ü \\"q\\""]'
    assert entity_key(7) == entity_key([7]) and entity_key("x") == entity_key(["x"])  # type: ignore[arg-type]
    assert entity_key([7.0]) == "[7]", "pandas' nullable ints arrive as floats"


def test_entity_key_is_stable_for_numpy_ints() -> None:
    np = pytest.importorskip("numpy")
    assert entity_key([np.int64(5), np.str_("a")]) == '[5,"a"]'


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([True], "join key values must be ints or strings, got bool True in (True,)"),
        ([1, 1.5], "join key values must be ints or strings, got float 1.5 in (1, 1.5)"),
        ([None], "got NoneType None"),
        ([b"x"], "got bytes b'x'"),
        ([], "an entity key needs at least one join key value"),
    ],
)
def test_entity_key_refuses_what_is_not_an_int_or_string(bad: list[object], message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        entity_key(bad)
    assert message in e.value.message


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.one_of(st.integers(), st.text()), min_size=1, max_size=3), min_size=2, max_size=2))
def test_entity_key_is_injective(pair: list[list[int | str]]) -> None:
    first, second = pair
    assert (entity_key(first) == entity_key(second)) == (first == second)
    assert json.loads(entity_key(first)) == first


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(), st.just(float("inf"))
)


@settings(max_examples=200, deadline=None)
@given(st.lists(SCALARS, min_size=1, max_size=20))
def test_any_row_of_scalars_round_trips(row: list[object]) -> None:
    decoded = decode_values(encode_values("v", row))
    assert decoded == row
    assert [type(v) for v in decoded] == [type(v) for v in row]


# ---- write and read ---------------------------------------------------------------------------------


def test_round_trip_of_every_scalar_type(store: OnlineStore) -> None:
    features = ["i", "f", "s", "t", "n", "big", "neg", "uni"]
    row = [42, 0.1, "text|with|bars", True, None, 2**53 + 1, -1.5e-300, "ü 日本"]
    assert store.write("v", [entity_key([1])], [1700000000.25], [row], features=features) == 1
    [(ts, values)] = store.read("v", [entity_key([1])])  # type: ignore[misc]
    assert ts == 1700000000.25
    assert values == row
    assert [type(v) for v in values] == [type(v) for v in row]


def test_all_float_rows_round_trip_exactly(store: OnlineStore) -> None:
    row = [0.1, -0.0, 1e308, 5e-324, float("inf"), 1 / 3]
    store.write("v", ["k"], [1.0], [row], features=list("abcdef"))
    [(_, values)] = store.read("v", ["k"])  # type: ignore[misc]
    assert values == row and str(values[1]) == "-0.0"
    store.write("v", ["nan"], [1.0], [[float("nan")]], features=["a"])
    [(_, nan)] = store.read("v", ["nan"])  # type: ignore[misc]
    assert nan[0] != nan[0]


def test_batch_of_100_keys_in_order_with_missing_as_none(store: OnlineStore) -> None:
    keys = [entity_key([i]) for i in range(100)]
    rows = [[float(i), i * 2, f"s{i}"] for i in range(100)]
    assert store.write("v", keys[::2], [float(i) for i in range(0, 100, 2)], rows[::2], features=F) == 50
    asked = [*reversed(keys), entity_key(["0"]), keys[4], keys[4]]
    got = store.read("v", asked)
    assert len(got) == len(asked)
    for key, hit in zip(asked, got, strict=True):
        i = int(key.strip("[]")) if not key.startswith('["') else None
        if i is None or i % 2:
            assert hit is None, key
        else:
            assert hit == (float(i), rows[i])
    assert store.read("v", []) == []
    assert store.read("no-such-view", keys[:3]) == [None, None, None]


def test_newer_wins_older_is_skipped_equal_replaces(store: OnlineStore) -> None:
    assert store.write("v", ["k"], [10.0], [[1, 1, 1]], features=F) == 1
    assert store.write("v", ["k"], [9.999], [[2, 2, 2]], features=F) == 0
    assert store.read("v", ["k"]) == [(10.0, [1, 1, 1])]
    assert store.write("v", ["k"], [10.0], [[3, 3, 3]], features=F) == 1
    assert store.read("v", ["k"]) == [(10.0, [3, 3, 3])]
    assert store.write("v", ["k", "new", "k"], [11.0, 5.0, 10.5], [[4] * 3, [5] * 3, [6] * 3], features=F) == 2
    assert store.read("v", ["k", "new"]) == [(11.0, [4, 4, 4]), (5.0, [5, 5, 5])]


def test_features_subset_and_order(store: OnlineStore) -> None:
    store.write("v", ["k"], [1.0], [[1, "two", 3.0]], features=F)
    assert store.read("v", ["k"], ["c", "a"]) == [(1.0, [3.0, 1])]
    assert store.read("v", ["k"], ["b"]) == [(1.0, ["two"])]
    assert store.read("v", ["k"], ["zz", "a", "a"]) == [(1.0, [None, 1, 1])]
    assert store.read("v", ["k"], []) == [(1.0, [])]


def test_rows_written_with_an_older_feature_list(store: OnlineStore) -> None:
    store.write("v", ["old"], [1.0], [[1.0, 2.0]], features=["a", "b"])
    store.write("v", ["new"], [2.0], [[3.0, 4.0, 5.0]], features=["c", "b", "a"])
    assert store.read("v", ["old", "new"], ["a", "b", "c"]) == [(1.0, [1.0, 2.0, None]), (2.0, [5.0, 4.0, 3.0])]
    assert store.read("v", ["old", "new"]) == [(1.0, [1.0, 2.0]), (2.0, [3.0, 4.0, 5.0])]
    store.write("v", ["old"], [3.0], [["x"]], features=["b"])
    assert store.read("v", ["old"], ["a", "b"]) == [(3.0, [None, "x"])]


def test_another_store_on_the_same_url_sees_the_rows(store_url: str) -> None:
    with open_online_store(store_url) as first:
        first.write("v", ["k"], [1.0], [[1, 2, 3]], features=F)
    with open_online_store(store_url) as second:
        assert second.read("v", ["k"], ["c"]) == [(1.0, [3])]
        assert second.count("v") == 1


def test_count_and_delete_view_touch_one_view_only(store: OnlineStore) -> None:
    views = ["a", "a:b", "a*", "a?", "[a]", "a/b c"]
    for n, view in enumerate(views, start=1):
        store.write(view, [entity_key([i]) for i in range(n)], [1.0] * n, [[i] for i in range(n)], features=["x"])
    assert [store.count(view) for view in views] == [1, 2, 3, 4, 5, 6]
    store.delete_view("a*")
    store.delete_view("a")
    assert [store.count(view) for view in views] == [0, 2, 0, 4, 5, 6]
    assert store.read("a", ["[0]"]) == [None]
    assert store.read("a:b", ["[1]"]) == [(1.0, [1])]
    store.delete_view("never-written")
    assert store.count("never-written") == 0
    store.write("a", ["[0]"], [0.5], [[9]], features=["x"])
    assert store.read("a", ["[0]"]) == [(0.5, [9])], "a deleted view starts afresh: no old event time wins"


def test_prefixes_keep_redis_stores_apart() -> None:
    shared_redis_or_skip()
    one, two = (f"strato-test-{uuid.uuid4().hex}" for _ in range(2))
    try:
        a = open_online_store(f"{REDIS_URL}?prefix={one}")
        b = open_online_store(f"{REDIS_URL}?prefix={two}")
        a.write("v", ["k"], [1.0], [[1]], features=["x"])
        assert b.read("v", ["k"]) == [None] and b.count("v") == 0
        b.delete_view("v")
        assert a.count("v") == 1
    finally:
        drop_prefix(one)
        drop_prefix(two)


def test_many_threads_reading_and_writing(store: OnlineStore) -> None:
    features = [f"f{i}" for i in range(50)]
    threads, rounds = 8, 25

    def work(t: int) -> None:
        for r in range(rounds):
            own = [entity_key([t, i]) for i in range(10)]
            store.write("v", own, [float(r)] * 10, [[float(t + r)] * 50] * 10, features=features)
            # Every thread races on one shared key; its event time decides the winner, not the order.
            store.write("v", [entity_key(["shared"])], [float(r * threads + t)], [[t, r]], features=["t", "r"])
            for hit in store.read("v", own, ["f0", "f49"]):
                assert hit is not None and hit[0] >= r and hit[1][0] == hit[1][1] == t + hit[0]

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    assert store.count("v") == threads * 10 + 1
    last = float((rounds - 1) * threads + threads - 1)
    assert store.read("v", [entity_key(["shared"])]) == [(last, [threads - 1, rounds - 1])]
    got = store.read("v", [entity_key([t, i]) for t in range(threads) for i in range(10)], ["f7"])
    assert got == [(float(rounds - 1), [float(t + rounds - 1)]) for t in range(threads) for _ in range(10)]


def test_large_batches_span_several_round_trips(store: OnlineStore) -> None:
    n = 2500
    keys = [entity_key([i]) for i in range(n)]
    assert store.write("v", keys, [1.0] * n, [[i] for i in range(n)], features=["x"]) == n
    assert store.count("v") == n
    assert store.read("v", keys) == [(1.0, [i]) for i in range(n)]
    store.delete_view("v")
    assert store.count("v") == 0


# ---- wrong arguments --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keys": ["k", "j"]}, "one event_ts and one row per key, got 2 keys, 1 event_ts, 1 rows"),
        ({"rows": [[1, 2]]}, "row 0 written to view 'v' has 2 values for 3 features"),
        ({"features": ["a", "b", "a"]}, "names features more than once: a"),
        ({"features": []}, "needs features="),
        ({"event_ts": [float("nan")]}, "event_ts 0 of the write to view 'v' is nan; give epoch seconds"),
        ({"event_ts": ["yesterday"]}, "is 'yesterday'; give epoch seconds"),
        ({"rows": [[1, 2, object()]]}, "must be JSON scalars"),
        ({"keys": [1]}, "entity keys are strings made by entity_key()"),
        ({"view": ""}, "a feature view name must be a non-empty string"),
    ],
)
def test_bad_writes_say_what_to_fix(store: OnlineStore, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"view": "v", "keys": ["k"], "event_ts": [1.0], "rows": [[1, 2, 3]], "features": F}
    args.update(kwargs)
    view, keys, event_ts, rows = args.pop("view"), args.pop("keys"), args.pop("event_ts"), args.pop("rows")
    with pytest.raises(InvalidArgument) as e:
        store.write(view, keys, event_ts, rows, **args)  # type: ignore[arg-type]
    assert message in e.value.message
    assert store.count("v") == 0


# ---- a Redis that goes away --------------------------------------------------------------------------


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server); needed to stop a Redis")
    with redis_server(password="s3cret") as server:
        yield server


def test_unreachable_redis_gives_a_clear_error_and_recovers(private_redis: RedisServer) -> None:
    server = private_redis
    store = open_online_store(f"{server.url}?prefix=p")
    assert store.write("v", ["k"], [1.0], [[1]], features=["x"]) == 1
    server.kill()
    expected = f"online store redis://127.0.0.1:{server.port}/0 is unreachable: "
    calls = [
        lambda: store.read("v", ["k"]),
        lambda: store.write("v", ["k"], [2.0], [[2]], features=["x"]),
        lambda: store.count("v"),
        lambda: store.delete_view("v"),
    ]
    for call in calls:
        with pytest.raises(Unavailable) as e:
            call()
        assert e.value.message.startswith(expected), e.value.message
        assert "s3cret" not in e.value.message
        assert e.value.http_status == 503
    server.start()  # same port, empty, no script loaded: the write must load it again
    assert store.read("v", ["k"]) == [None]
    assert store.write("v", ["k"], [3.0], [[3]], features=["x"]) == 1
    assert store.read("v", ["k"]) == [(3.0, [3])]
    server.kill()
    server.start()  # no call in between: the pooled connection is stale, and one retry must hide that
    assert store.read("v", ["k"]) == [None]
    store.close()
