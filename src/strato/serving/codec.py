"""Request and response bodies of a model-serving endpoint, independent of the HTTP server.

``decode_invocation`` reads the formats of MLflow's scoring server, SageMaker and TF-serving:

* ``application/json`` (assumed too when the content type is missing and the body starts with ``{`` or ``[``):
  ``{"dataframe_split": {"columns": [...], "data": [[...], ...], "index": [...]}}`` (index optional);
  ``{"dataframe_records": [{column: value}, ...]}``; ``{"instances": ...}`` or ``{"inputs": ...}`` holding a
  list of rows, a list of records or an object of columns; a bare list of records or of rows; a bare object
  of columns ``{"a": [1, 2], "b": [3, 4]}``.
* ``text/csv`` (assumed when the content type is missing and the body is not JSON): one row per line, no
  header, unless the first line is exactly the schema's column names.

With an ``InputSchema`` (from the model's MLflow signature) named input becomes a DataFrame of the schema's
columns in the schema's order, extra columns dropped and values coerced to the column types; positional input
(rows, CSV) is assigned to the columns by position; tensor input becomes an ndarray of the declared dtype and
shape. Without a schema, rows of numbers become a float64 ndarray and anything else a DataFrame.

``encode_predictions`` writes ``{"predictions": ...}`` (a DataFrame as a list of records; NaN and infinities,
which JSON cannot hold, as null), or headerless CSV when the client accepts ``text/csv``. The Open Inference
Protocol (v2) is in ``strato.serving.v2`` (``decode_v2``/``encode_v2`` are importable from here too).
Every problem with a payload raises ``InvalidArgument`` (HTTP 400) with a message that names what to fix.
"""

from __future__ import annotations

import base64
import binascii
import csv
import importlib
import io
import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from strato.errors import InvalidArgument

if TYPE_CHECKING:
    from strato.serving.v2 import decode_v2, encode_v2

__all__ = [
    "InputSchema",
    "concat_inputs",
    "decode_invocation",
    "decode_v2",
    "encode_predictions",
    "encode_v2",
    "schema_from_signature",
    "split_outputs",
]

try:  # several times faster both ways; the standard json is the fallback that always works
    _orjson: Any = importlib.import_module("orjson")
except ImportError:  # pragma: no cover - depends on what is installed
    _orjson = None

NO_ROWS = "the request has no rows"
_TYPES = frozenset({"double", "float", "long", "integer", "boolean", "string", "binary", "datetime"})
_FLOATS = {"double": np.float64, "float": np.float32}
_INTS: dict[str, type[np.signedinteger[Any]]] = {"long": np.int64, "integer": np.int32}
_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_FORMATS = (
    'send {"dataframe_split": ...}, {"dataframe_records": [...]}, {"instances": [...]}, {"inputs": ...}, '
    "a list of rows or records, or an object of columns"
)
_FIRST = re.compile(rb"\s*(\S)")


@dataclass(frozen=True)
class InputSchema:
    """What a model takes: named columns (``columns`` with MLflow type names in ``types``; "any" for the
    nested types, whose values pass unchecked; ``optional`` those a request may leave out) or one tensor
    (``tensor_shape`` with -1 for variable dims, ``tensor_dtype`` a numpy dtype name)."""

    columns: tuple[str, ...] | None = None
    types: tuple[str, ...] | None = None
    tensor_shape: tuple[int, ...] | None = None
    tensor_dtype: str | None = None
    optional: frozenset[str] = frozenset()

    @cached_property
    def column_index(self) -> pd.Index:
        """The columns as a pandas Index, built once: a DataFrame built on it costs a fifth of one built on a list."""
        return pd.Index(self.columns or ())


def schema_from_signature(signature: Any) -> InputSchema | None:
    """The input schema of an ``mlflow.models.ModelSignature``; None (no checks) when there is nothing this
    codec can check: no signature, unnamed columns, or several named tensors (a dict input)."""
    inputs = getattr(signature, "inputs", None)
    specs = list(getattr(inputs, "inputs", None) or ())
    if inputs is None or not specs:
        return None
    if inputs.is_tensor_spec():
        if len(specs) != 1:
            return None
        return InputSchema(
            tensor_shape=tuple(int(d) for d in specs[0].shape), tensor_dtype=np.dtype(specs[0].type).name
        )
    if not inputs.has_input_names():
        return None
    types = tuple(getattr(s.type, "name", None) for s in specs)
    return InputSchema(
        columns=tuple(s.name for s in specs),
        types=tuple(t if t in _TYPES else "any" for t in types),
        optional=frozenset(s.name for s in specs if not getattr(s, "required", True)),
    )


# ---- JSON ------------------------------------------------------------------------------------------------


def _loads(body: bytes) -> Any:
    if _orjson is not None:
        try:
            return _orjson.loads(body)
        except _orjson.JSONDecodeError:
            pass  # json gives the standard message, and reads what orjson refuses (NaN)
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise InvalidArgument("the body is not UTF-8 text") from None
    except RecursionError:
        raise InvalidArgument("the JSON is nested too deeply") from None


def _plain(arr: np.ndarray) -> Any:
    """An array as nested Python lists that JSON can hold: non-finite floats as None, times as datetimes."""
    kind = arr.dtype.kind
    if kind == "f":
        finite = np.isfinite(arr)
        if finite.all():
            return arr.tolist()
        obj = arr.astype(object)
        obj[~finite] = None
        return obj.tolist()
    if kind == "M":
        return arr.astype("datetime64[us]").tolist()  # datetime objects, NaT as None
    if kind == "m":
        return _plain(arr / np.timedelta64(1, "s"))  # seconds
    if kind == "O":
        return _finite(arr.tolist())
    return arr.tolist()


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities (which JSON lacks) as None and numpy/pandas values as Python's."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k if isinstance(k, str | int) else str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return _finite(value.item())
    if isinstance(value, np.ndarray | pd.Series | pd.Index):
        return _plain(np.asarray(value))
    if isinstance(value, pd.DataFrame):
        return _records(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    columns = [str(c) for c in df.columns]  # ten times faster than df.to_dict("records")
    return [dict(zip(columns, row, strict=True)) for row in _plain(df.to_numpy())]


def _default(value: Any) -> Any:
    if value is pd.NaT:
        return None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, set | frozenset):
        return list(value)
    converted = _finite(value)
    if converted is value:
        return str(value)  # anything else (Decimal, UUID, ...) as its text rather than a 500
    return converted


def _dumps(obj: Any) -> bytes:
    if _orjson is not None:
        try:
            return _orjson.dumps(obj, default=_default, option=_orjson.OPT_SERIALIZE_NUMPY | _orjson.OPT_NON_STR_KEYS)
        except TypeError:  # what orjson cannot write (an integer past 64 bits): json below can
            pass
    try:
        return json.dumps(obj, default=_default, allow_nan=False, separators=(",", ":")).encode()
    except ValueError:  # a NaN inside plain Python values: JSON has no such number, send null
        return json.dumps(_finite(obj), default=_default, allow_nan=False, separators=(",", ":")).encode()


# ---- values -> typed columns and tensors ------------------------------------------------------------------


def _show(value: Any) -> str:
    """A value as the client wrote it, cut short: 'abc' for a string, JSON for the rest."""
    if isinstance(value, np.generic):
        value = value.item()
    try:
        text = repr(value) if isinstance(value, str) else json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _asarray(values: Any, dtype: Any = None) -> np.ndarray | None:
    try:
        with np.errstate(over="ignore"):  # a number too large for float32 is infinite, not a log line
            return np.asarray(values, dtype=dtype)
    except (ValueError, TypeError, OverflowError):
        return None


def _float(name: str, value: Any) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan  # null, or CSV's empty field: a missing value
    if isinstance(value, int | float | str | np.number):
        try:
            return float(value)
        except ValueError:
            pass
    raise InvalidArgument(f"column {name!r}: expected a number, got {_show(value)}")


def _int(name: str, kind: str, value: Any) -> int:
    n: int | None = None
    if isinstance(value, int | np.integer) or (isinstance(value, float | np.floating) and float(value).is_integer()):
        n = int(value)
    elif isinstance(value, str):
        try:
            n = int(value)
        except ValueError:
            try:
                f = float(value)  # "5.0"
                n = int(f) if f.is_integer() else None
            except ValueError:
                pass
    if n is None:
        raise InvalidArgument(f"column {name!r}: expected an integer, got {_show(value)}")
    bits = 64 if kind == "long" else 32
    if not -(2 ** (bits - 1)) <= n < 2 ** (bits - 1):
        raise InvalidArgument(f"column {name!r}: {n} does not fit a {bits}-bit integer")
    return n


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise InvalidArgument(f"column {name!r}: expected a boolean, got {_show(value)}")


def _column(name: str, kind: str, values: Any) -> Any:
    """One column's values (a list, or an ndarray column) as the MLflow type ``kind``: a fast vectorized
    conversion when it is lossless, else value by value to name the first bad one."""
    if kind in _FLOATS:
        arr = _asarray(values, _FLOATS[kind])
        if arr is not None and arr.ndim == 1:
            return arr
        return np.array([_float(name, v) for v in values], dtype=_FLOATS[kind])
    if kind in _INTS:
        arr = _asarray(values)
        if arr is not None and arr.ndim == 1 and arr.dtype.kind in "biuf":
            arr = arr.astype(np.float64) if arr.dtype.kind == "f" else arr
            whole = arr.dtype.kind != "f" or bool(np.isfinite(arr).all() and (arr == np.trunc(arr)).all())
            if whole and _fits(arr, _INTS[kind]):
                return arr.astype(_INTS[kind])
        return np.array([_int(name, kind, v) for v in values], dtype=_INTS[kind])
    if kind == "boolean":
        arr = _asarray(values)
        if arr is not None and arr.ndim == 1 and arr.dtype.kind == "b":
            return arr
        return np.array([_bool(name, v) for v in values], dtype=bool)
    values = values.tolist() if isinstance(values, np.ndarray) else values
    if kind == "string":
        for v in values:
            if v is not None and not isinstance(v, str):
                raise InvalidArgument(f"column {name!r}: expected a string, got {_show(v)}")
    elif kind == "binary":
        return [_bytes(name, v) for v in values]
    elif kind == "datetime":
        try:
            return pd.to_datetime(values, format="ISO8601")
        except (ValueError, TypeError, OverflowError) as exc:
            for v in values:
                try:
                    pd.to_datetime([v], format="ISO8601")
                except (ValueError, TypeError, OverflowError):
                    raise InvalidArgument(f"column {name!r}: expected an ISO-8601 date-time, got {_show(v)}") from None
            raise InvalidArgument(f"column {name!r}: expected ISO-8601 date-times ({exc})") from None
    return values


def _bytes(name: str, value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):  # JSON has no bytes: MLflow's convention is base64 text
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            pass
    raise InvalidArgument(f"column {name!r}: expected base64-encoded bytes, got {_show(value)}")


def _fits(arr: np.ndarray, dtype: Any) -> bool:
    info = np.iinfo(dtype)  # max + 1: exact as a float too, where max itself rounds up past the range
    return arr.size == 0 or arr.dtype.kind == "b" or bool(arr.min() >= info.min and arr.max() < info.max + 1)


def _as_dtype(values: Any, dtype: np.dtype) -> np.ndarray:
    """Nested lists (or an array) as an array of ``dtype``. Raises ValueError, with the reason, for what
    numpy would convert with a loss (1.5 to an integer, 300 to uint8, "x" to a bool)."""
    try:
        if dtype.kind in "fcOUS":
            with np.errstate(over="ignore"):  # a number too large for the dtype is infinite, not a log line
                return np.asarray(values, dtype=dtype)
        arr = np.asarray(values)
        if dtype.kind == "b":
            if arr.dtype.kind == "b" or (arr.dtype.kind in "iu" and ((arr == 0) | (arr == 1)).all()):
                return arr.astype(bool)
            raise ValueError("expected true or false")
        if arr.dtype.kind in "US":
            arr = arr.astype(np.int64)  # integers written as text (CSV)
        elif arr.dtype.kind == "f":
            arr = arr.astype(np.float64)
            whole = np.isfinite(arr) & (arr == np.trunc(arr))
            if not whole.all():
                raise ValueError(f"expected integers, got {_show(arr[~whole].flat[0])}")
        elif arr.dtype.kind not in "biu":
            raise ValueError("expected integers")
        if not _fits(arr, dtype):
            info = np.iinfo(dtype)
            raise ValueError(f"values must lie in [{info.min}, {info.max}] for {dtype.name}")
        return arr.astype(dtype)
    except (TypeError, OverflowError) as exc:
        raise ValueError(str(exc)) from None
    except ValueError as exc:
        if "inhomogeneous" in str(exc):
            raise ValueError("rows of different lengths") from None
        raise


def _tensor(values: Any, schema: InputSchema) -> np.ndarray:
    want = schema.tensor_shape or ()
    try:
        arr = _as_dtype(values, np.dtype(schema.tensor_dtype))
    except ValueError as exc:
        raise InvalidArgument(f"expected a {schema.tensor_dtype} tensor of shape {want}: {exc}") from None
    if arr.ndim != len(want) or any(w not in (-1, g) for w, g in zip(want, arr.shape, strict=True)):
        raise InvalidArgument(f"expected shape {want}, got {arr.shape}")
    return arr


# ---- the schema applied to each orientation ---------------------------------------------------------------


def _present(schema: InputSchema, available: Any) -> list[tuple[str, str]]:
    """(column, type) for the schema's columns found in ``available``; a missing required one is an error."""
    columns, types = schema.columns or (), schema.types or ()
    missing = [c for c in columns if c not in available and c not in schema.optional]
    if missing:
        noun = "column" if len(missing) == 1 else "columns"
        named = ", ".join(repr(c) for c in missing)
        raise InvalidArgument(f"missing {noun} {named} (the model takes: {', '.join(columns)})")
    return [(c, t) for c, t in zip(columns, types, strict=True) if c in available]


def _assemble(data: dict[str, Any], schema: InputSchema, rows: int, index: Any = None) -> pd.DataFrame:
    for name, kind in zip(schema.columns or (), schema.types or (), strict=True):
        if name not in data:  # a left-out optional column stays in the frame, so its layout is the trained one
            data[name] = np.full(rows, np.nan, _FLOATS[kind]) if kind in _FLOATS else [None] * rows
    arrays = [data[c] for c in schema.columns or ()]
    dtypes = {a.dtype if isinstance(a, np.ndarray) else None for a in arrays}
    # one numeric dtype: built as one block, six times faster than from a dict
    if len(dtypes) == 1 and getattr(next(iter(dtypes)), "kind", "") in ("b", "i", "u", "f"):
        return pd.DataFrame(np.column_stack(arrays), columns=schema.column_index, index=index, copy=False)
    return pd.DataFrame(dict(zip(schema.column_index, arrays, strict=True)), index=index, copy=False)


def _check_widths(rows: Any, n: int, what: str | None) -> None:
    if isinstance(rows, np.ndarray):
        widths: Any = [rows.shape[1] if rows.ndim == 2 else "a single value"]
    else:
        widths = (len(row) if isinstance(row, list) else "a single value" for row in rows)
    for i, got in enumerate(widths, 1):
        if got == n:
            continue
        if what is None:  # positional: the values are the model's features in order
            raise InvalidArgument(f"expected {n} features per row, got {got} (row {i})")
        raise InvalidArgument(f"{what} row {i} has {got} values, expected {n} (one per column)")


def _from_rows(rows: Any, names: Sequence[Any] | None, schema: InputSchema | None, index: Any = None) -> Any:
    """Rows of values (lists, or a 2-D array), named by ``names`` or, when None, by position."""
    if schema is not None and schema.tensor_shape is not None:
        return _tensor(rows, schema)
    what = None if names is None else "dataframe_split"
    if schema is None or schema.columns is None:
        if names is None:
            arr = _asarray(rows)
            if arr is not None and arr.dtype.kind in "iuf":
                return arr.astype(np.float64, copy=False)
        if names is not None or (arr is None and isinstance(rows[0], list)):
            _check_widths(rows, len(names if names is not None else rows[0]), what)
        try:
            return pd.DataFrame(rows, columns=None if names is None else list(names), index=index)
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(
                f"the rows do not form a table ({exc}); send a list of rows of equal length"
            ) from None
    if names is None:
        names = schema.columns
        if len(names) == 1 and isinstance(rows, list) and not isinstance(rows[0], list):
            rows = [[v] for v in rows]  # one feature sent as a flat list
    position = {name: i for i, name in enumerate(names)}
    present = _present(schema, position)
    n = len(names)
    if all(kind in _FLOATS for _, kind in present):  # the common case, vectorized: all floats
        arr = _asarray(rows, np.float64)
        if arr is not None and arr.ndim == 2 and arr.shape[1] == n:
            picked = [position[c] for c, _ in present]
            if picked != list(range(n)):
                arr = arr[:, picked]
            if len(present) == len(schema.columns) and all(kind == "double" for _, kind in present):
                return pd.DataFrame(arr, columns=schema.column_index, index=index, copy=False)
            data = {c: arr[:, j].astype(_FLOATS[kind]) for j, (c, kind) in enumerate(present)}
            return _assemble(data, schema, len(arr), index)
    _check_widths(rows, n, what)
    is_array = isinstance(rows, np.ndarray)
    data = {
        c: _column(c, kind, rows[:, position[c]] if is_array else [r[position[c]] for r in rows]) for c, kind in present
    }
    return _assemble(data, schema, len(rows), index)


def _from_records(records: list[Any], schema: InputSchema | None, what: str) -> Any:
    for i, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise InvalidArgument(f"{what} item {i} is not an object (send a list of records, each {{column: value}})")
    if schema is None or schema.columns is None:
        frame = pd.DataFrame(records)
        return frame if schema is None else _tensor(frame.to_numpy(), schema)
    present = [c for c, _ in _present(schema, set().union(*records))]
    return _from_rows([[r.get(c) for c in present] for r in records], present, schema)


def _from_columns(columns: dict[str, Any], schema: InputSchema | None) -> Any:
    if not any(isinstance(v, list | dict) for v in columns.values()):
        return _from_records([columns], schema, "the request")  # one row: {"a": 1, "b": 2}
    lengths = {}
    for name, values in columns.items():
        if not isinstance(values, list):
            raise InvalidArgument(f"column {name!r} must be a list of values; {_FORMATS}")
        lengths[name] = len(values)
    rows = max(lengths.values())
    if rows == 0:
        raise InvalidArgument(NO_ROWS)
    for name, length in lengths.items():
        if length != rows:
            raise InvalidArgument(f"column {name!r} has {length} values, expected {rows} like the others")
    if schema is None or schema.columns is None:
        frame = pd.DataFrame(columns)
        return frame if schema is None else _tensor(frame.to_numpy(), schema)
    data = {c: _column(c, kind, columns[c]) for c, kind in _present(schema, columns)}
    return _assemble(data, schema, rows)


def _from_split(split: Any, schema: InputSchema | None) -> Any:
    if not isinstance(split, dict) or not isinstance(split.get("data"), list):
        raise InvalidArgument('dataframe_split must be {"columns": [...], "data": [[...], ...]}')
    data, columns, index = split["data"], split.get("columns"), split.get("index")
    if not data:
        raise InvalidArgument(NO_ROWS)
    if columns is not None and (
        not isinstance(columns, list) or not all(isinstance(c, str | int | float) for c in columns)
    ):
        raise InvalidArgument("dataframe_split columns must be a list of names")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        count = len(index) if isinstance(index, list) else "no list of"
        raise InvalidArgument(f"dataframe_split has {count} index values for {len(data)} rows")
    return _from_rows(data, columns, schema, index)


def _from_value(value: Any, schema: InputSchema | None, what: str) -> Any:
    if isinstance(value, dict):
        return _from_columns(value, schema)
    if not isinstance(value, list):
        raise InvalidArgument(f"unsupported JSON payload in {what}: {_FORMATS}")
    if not value:
        raise InvalidArgument(NO_ROWS)
    if isinstance(value[0], dict):
        return _from_records(value, schema, what)
    return _from_rows(value, None, schema)


def _decode_json(payload: Any, schema: InputSchema | None) -> Any:
    if not isinstance(payload, dict):
        return _from_value(payload, schema, "the request")
    found = [key for key in _KEYS if key in payload]
    if len(found) > 1:
        raise InvalidArgument(f"send only one of {', '.join(found)}")
    if not found:
        if not payload:
            raise InvalidArgument(NO_ROWS)
        return _from_columns(payload, schema)
    key, value = found[0], payload[found[0]]
    if key == "dataframe_split":
        return _from_split(value, schema)
    if key == "dataframe_records" and not isinstance(value, list):
        raise InvalidArgument("dataframe_records must be a list of records, each {column: value}")
    return _from_value(value, schema, key)


def _decode_csv(body: bytes, schema: InputSchema | None) -> Any:
    try:
        text = body.decode("utf-8-sig")  # -sig: a spreadsheet's byte-order mark is not part of the first value
        numbered = [(i, row) for i, row in enumerate(csv.reader(io.StringIO(text)), 1) if row]
    except UnicodeDecodeError:
        raise InvalidArgument("the CSV body is not UTF-8 text") from None
    except csv.Error as exc:
        raise InvalidArgument(f"malformed CSV: {exc}") from None
    columns = schema.columns if schema is not None else None
    if columns is not None and numbered and numbered[0][1] == list(columns):
        numbered = numbered[1:]  # a header: the schema's names, in order
    if not numbered:
        raise InvalidArgument(NO_ROWS)
    width = len(numbered[0][1])
    if columns is not None:
        width = len(columns)
    elif schema is not None and schema.tensor_shape is not None and len(schema.tensor_shape) == 2:
        width = schema.tensor_shape[1] if schema.tensor_shape[1] != -1 else width
    for i, row in numbered:
        if len(row) != width:
            raise InvalidArgument(f"CSV row {i} has {len(row)} fields, expected {width}")
    rows = [row for _, row in numbered]
    if schema is not None:
        return _from_rows(rows, None, schema)
    arr = _asarray(rows, np.float64)
    if arr is not None:
        return arr
    data = {}  # no schema: each column a number if all of it reads as one, else text
    for j, values in enumerate(zip(*rows, strict=True)):
        numbers = _asarray([v if v.strip() else "nan" for v in values], np.float64)
        data[j] = numbers if numbers is not None else list(values)
    return pd.DataFrame(data)


def _media_type(header: str | None) -> str:
    return header.split(";", 1)[0].strip().lower() if header else ""


def decode_invocation(body: bytes, content_type: str | None, schema: InputSchema | None) -> pd.DataFrame | np.ndarray:
    """The model input in an ``/invocations`` request body (formats: see the module docstring)."""
    media = _media_type(content_type)
    if media not in ("", "application/json", "text/csv"):
        raise InvalidArgument(f"unsupported content type {media!r} (use application/json or text/csv)")
    first = _FIRST.match(body)
    if first is None:
        raise InvalidArgument(NO_ROWS)
    if media == "application/json" or (not media and first.group(1) in (b"{", b"[")):
        return _decode_json(_loads(body), schema)
    return _decode_csv(body, schema)


# ---- responses and batching -------------------------------------------------------------------------------


def _table(predictions: Any) -> list[Any]:
    """Predictions as rows for CSV."""
    if isinstance(predictions, pd.DataFrame):
        return _plain(predictions.to_numpy())
    if isinstance(predictions, dict):
        values = [_finite(v) for v in predictions.values()]
        if all(isinstance(v, list) for v in values):
            return [list(row) for row in zip(*values, strict=False)]
        return [values]
    if isinstance(predictions, np.ndarray | pd.Series | pd.Index):
        arr = np.asarray(predictions)
        if arr.ndim > 2:
            raise InvalidArgument(f"predictions of shape {arr.shape} do not fit CSV rows; accept application/json")
        predictions = _plain(arr)
    elif isinstance(predictions, list | tuple):
        predictions = _finite(predictions)
    if not isinstance(predictions, list):
        return [[_finite(predictions)]]
    return [
        list(item.values()) if isinstance(item, dict) else item if isinstance(item, list) else [item]
        for item in predictions
    ]


def encode_predictions(predictions: Any, accept: str | None) -> tuple[bytes, str]:
    """(body, content type) for an ``/invocations`` response: ``{"predictions": ...}`` JSON unless the
    ``accept`` header names ``text/csv`` before any JSON type (then headerless CSV)."""
    for part in (accept or "").split(","):
        media = _media_type(part)
        if media == "text/csv":
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows(_table(predictions))
            return buffer.getvalue().encode(), "text/csv"
        if media in ("application/json", "application/*", "*/*"):
            break
    if isinstance(predictions, np.ndarray | np.generic | pd.Series | pd.DataFrame | pd.Index):
        predictions = _finite(predictions)  # plain lists: the shape json and orjson write fastest
    return _dumps({"predictions": predictions}), "application/json"


def concat_inputs(inputs: list[pd.DataFrame | np.ndarray]) -> pd.DataFrame | np.ndarray:
    """Several decoded requests as one model input (rows in order), for one batched predict call. Raises
    ValueError when they cannot be combined (different columns or shapes): predict them one by one."""
    if not inputs:
        raise ValueError("no inputs to concatenate")
    if len(inputs) == 1:
        return inputs[0]
    arrays = [x for x in inputs if isinstance(x, np.ndarray)]
    if len(arrays) == len(inputs):
        if len({(x.shape[1:], x.dtype) for x in arrays}) != 1:
            raise ValueError("the inputs differ in shape or dtype beyond the first dimension")
        return np.concatenate(arrays, axis=0)
    frames = [x for x in inputs if isinstance(x, pd.DataFrame)]
    if len(frames) == len(inputs):
        if any(not frames[0].columns.equals(x.columns) for x in frames[1:]):
            raise ValueError("the inputs have different columns")
        return pd.concat(frames, ignore_index=True)
    raise ValueError("the inputs mix DataFrames and arrays")


def split_outputs(predictions: Any, lengths: list[int]) -> list[Any]:
    """The inverse of ``concat_inputs`` on the model's output: one slice per request, of the same type.
    Raises ValueError when the model did not return one prediction per input row."""
    if isinstance(predictions, dict):
        parts = {k: split_outputs(v, lengths) for k, v in predictions.items()}
        return [{k: v[i] for k, v in parts.items()} for i in range(len(lengths))]
    if isinstance(predictions, tuple):
        predictions = list(predictions)
    if not isinstance(predictions, np.ndarray | pd.DataFrame | pd.Series | list):
        raise ValueError(f"cannot split predictions of type {type(predictions).__name__} by request")
    if len(predictions) != sum(lengths):
        raise ValueError(f"the model returned {len(predictions)} predictions for {sum(lengths)} rows")
    rows = predictions.iloc if isinstance(predictions, pd.DataFrame | pd.Series) else predictions
    bounds = np.cumsum([0, *lengths]).tolist()
    return [rows[a:b] for a, b in itertools.pairwise(bounds)]


def __getattr__(name: str) -> Any:
    # The v2 codec is its own module; its two functions are reachable from here too without an import cycle.
    if name in ("decode_v2", "encode_v2"):
        from strato.serving import v2

        return getattr(v2, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
