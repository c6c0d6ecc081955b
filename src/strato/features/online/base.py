"""The online store contract, the canonical entity key, and the row encoding both backends share.

A row is stored per (view, entity key) as three things: its event time, the id of its feature list, and
its values. Feature lists are stored once per view, content-addressed (the id is a hash of the names), so
a row costs only its values, a row written with an older list still reads by name, and a cached list can
never go stale. Values are packed float64 when every value is a float (the common case: 50 floats decode
in about half a microsecond, JSON takes ~9) and compact JSON otherwise.
"""

from __future__ import annotations

import abc
import hashlib
import json
import math
import numbers
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from strato.errors import InvalidArgument

# Read results: per key, (event_ts, values) or None.
ReadResult = list[tuple[float, list[Any]] | None]


class OnlineStore(abc.ABC):
    """The latest feature values of each entity, per feature view. One store per workspace; thread-safe."""

    url: str

    @abc.abstractmethod
    def write(
        self,
        view: str,
        keys: Sequence[str],
        event_ts: Sequence[float],
        rows: Sequence[Sequence[Any]],
        *,
        features: Sequence[str],
    ) -> int:
        """Store ``rows[i]`` (values of ``features``, in order) for ``keys[i]`` at ``event_ts[i]`` (epoch seconds).

        Newer wins per key: a row older than the stored one is skipped; an equal or newer one replaces it
        (all its features, atomically). Returns how many rows were applied."""

    @abc.abstractmethod
    def read(self, view: str, keys: Sequence[str], features: Sequence[str] | None = None) -> ReadResult:
        """One entry per key, in order: ``(event_ts, values)`` or None when the key has no row. ``values``
        follow ``features`` (None for a feature the stored row lacks); ``features=None`` gives every stored
        feature of the row in the order it was written."""

    @abc.abstractmethod
    def delete_view(self, view: str) -> None:
        """Remove every row of ``view`` (nothing happens when it has none)."""

    @abc.abstractmethod
    def count(self, view: str) -> int:
        """How many entity keys ``view`` has a row for."""

    def close(self) -> None:  # noqa: B027 - optional hook: backends without resources need not override
        """Release connections; the store is not used afterwards."""

    def __enter__(self) -> OnlineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


# ---- entity keys -----------------------------------------------------------------------------------


def entity_key(values: Sequence[Any]) -> str:
    """The canonical key of a join-key tuple, the same in every store: a compact JSON array, so ``1`` and
    ``"1"`` differ (``[1]`` vs ``["1"]``) and column order counts. A bare int or string is a 1-tuple;
    a float with an integral value (pandas turns int columns holding a null into floats) counts as an int."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        values = (values,)
    if not values:
        raise InvalidArgument("an entity key needs at least one join key value")
    parts = []
    for value in values:
        if isinstance(value, str):
            parts.append(json.dumps(value, ensure_ascii=False))
        elif (isinstance(value, numbers.Integral) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        ):
            parts.append(str(int(value)))
        else:
            raise InvalidArgument(
                f"join key values must be ints or strings, got {type(value).__name__} {value!r} in {tuple(values)!r}"
            )
    return f"[{','.join(parts)}]"


# ---- arguments ------------------------------------------------------------------------------------


def check_view(view: str) -> None:
    if not isinstance(view, str) or not view:
        raise InvalidArgument(f"a feature view name must be a non-empty string, got {view!r}")


def check_write(
    view: str, keys: Sequence[str], event_ts: Sequence[float], rows: Sequence[Sequence[Any]], features: Sequence[str]
) -> list[float]:
    """Validate a write; return the event times as finite floats."""
    check_view(view)
    if isinstance(features, str) or not features:
        raise InvalidArgument(f"write to view {view!r} needs features=[names...] (one name per value of a row)")
    if len(set(features)) != len(features):
        dupes = sorted({f for f in features if list(features).count(f) > 1})
        raise InvalidArgument(f"write to view {view!r} names features more than once: {', '.join(dupes)}")
    if not len(keys) == len(event_ts) == len(rows):
        raise InvalidArgument(
            f"write to view {view!r} needs one event_ts and one row per key, "
            f"got {len(keys)} keys, {len(event_ts)} event_ts, {len(rows)} rows"
        )
    for i, row in enumerate(rows):
        if len(row) != len(features):
            raise InvalidArgument(
                f"row {i} written to view {view!r} has {len(row)} values for {len(features)} features"
            )
    times = []
    for i, ts in enumerate(event_ts):
        try:
            value = float(ts)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            raise InvalidArgument(f"event_ts {i} of the write to view {view!r} is {ts!r}; give epoch seconds")
        times.append(value)
    for key in keys:
        if not isinstance(key, str):
            raise InvalidArgument(f"entity keys are strings made by entity_key(), got {key!r} for view {view!r}")
    return times


# ---- feature lists --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schema:
    id: str  # 16 hex characters, a hash of the names
    names: tuple[str, ...]
    json: str


_schemas: dict[tuple[str, ...], Schema] = {}


def schema_of(features: Sequence[str]) -> Schema:
    names = tuple(features)
    schema = _schemas.get(names)
    if schema is None:
        text = json.dumps(list(names), ensure_ascii=False, separators=(",", ":"))
        digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
        schema = Schema(digest, names, text)
        if len(_schemas) > 10_000:  # a bound for callers that invent feature lists on the fly
            _schemas.clear()
        _schemas[names] = schema
    return schema


def names_from_json(text: str | bytes) -> tuple[str, ...]:
    return tuple(json.loads(text))


class Projections:
    """Which stored position serves each requested feature, cached per (feature list id, request)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, tuple[str, ...]], list[int]] = {}

    def positions(self, schema_id: str, stored: tuple[str, ...], wanted: tuple[str, ...]) -> list[int]:
        key = (schema_id, wanted)
        found = self._cache.get(key)
        if found is None:
            index = {name: i for i, name in enumerate(stored)}
            found = [index.get(name, -1) for name in wanted]
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = found
        return found

    @staticmethod
    def apply(values: list[Any], positions: list[int]) -> list[Any]:
        return [values[i] if i >= 0 else None for i in positions]


# ---- values ---------------------------------------------------------------------------------------

_FLOATS = b"d"  # then float64 little-endian
_JSON = b"j"  # then compact UTF-8 JSON array
_LITTLE = sys.byteorder == "little"


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy / pyarrow scalars
    if callable(item):
        return item()
    raise TypeError(f"{type(value).__name__} {value!r}")


_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_plain)


def encode_values(view: str, row: Sequence[Any]) -> bytes:
    if all(isinstance(v, float) for v in row):
        packed = array("d", row)
        if not _LITTLE:
            packed.byteswap()
        return _FLOATS + packed.tobytes()
    try:
        return _JSON + _encoder.encode(list(row)).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"feature values of view {view!r} must be JSON scalars (int, float, str, bool, None), got {exc}"
        ) from None


def decode_values(data: bytes) -> list[Any]:
    if data[:1] == _FLOATS:
        packed = array("d")
        packed.frombytes(data[1:])
        if not _LITTLE:
            packed.byteswap()
        return packed.tolist()
    return json.loads(data[1:])
