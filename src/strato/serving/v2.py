"""Open Inference Protocol (KServe / Triton "v2") request and response bodies, JSON form.

Request ``{"id", "parameters", "inputs": [{"name", "shape", "datatype", "data"}], "outputs": [{"name"}]}``,
``data`` flat or nested. One input becomes an ndarray of its ``shape`` and ``datatype``; several inputs, each
1-D or [N, 1] with the same N, become a DataFrame with one column per input (MLflow's own v2 mapping), as does
a single input named like one of the schema's columns; a single 2-D input for a columns schema has its
columns assigned by position. Then the schema checks of ``strato.serving.codec`` apply.

Response ``{"model_name", "model_version", "id", "outputs": [{"name", "shape", "datatype", "data"}]}``:
``data`` flat in row-major order, ``datatype`` a v2 name, so that ``tritonclient``'s ``InferResult`` reads
it; a DataFrame gives one output per column, anything else one output named "predict".
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from strato.errors import InvalidArgument
from strato.serving.codec import (
    _FIRST,
    NO_ROWS,
    InputSchema,
    _as_dtype,
    _assemble,
    _column,
    _dumps,
    _from_rows,
    _loads,
    _plain,
    _present,
    _show,
    _tensor,
)

__all__ = ["decode_v2", "encode_v2"]

DATATYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(dtype)
    for name, dtype in [
        ("BOOL", bool),
        ("UINT8", np.uint8),
        ("UINT16", np.uint16),
        ("UINT32", np.uint32),
        ("UINT64", np.uint64),
        ("INT8", np.int8),
        ("INT16", np.int16),
        ("INT32", np.int32),
        ("INT64", np.int64),
        ("FP16", np.float16),
        ("FP32", np.float32),
        ("FP64", np.float64),
        ("BYTES", object),
    ]
}
_REQUEST = 'send {"inputs": [{"name": ..., "shape": [...], "datatype": ..., "data": [...]}]}'


def _decode_input(i: int, spec: Any) -> tuple[str, np.ndarray]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise InvalidArgument(f"input {i} needs a name, shape, datatype and data; {_REQUEST}")
    label = f"input {spec['name']!r}"
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise InvalidArgument(f"{label}: shape must be a list of non-negative integers, got {_show(shape)}")
    datatype = spec.get("datatype")
    dtype = DATATYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise InvalidArgument(f"{label}: unknown datatype {_show(datatype)} (use one of {', '.join(DATATYPES)})")
    data = spec.get("data")
    if not isinstance(data, list):
        # the binary-data extension puts the values after the JSON; only the JSON form is read here
        raise InvalidArgument(f'{label}: "data" must be a list of values (the binary data extension is not supported)')
    try:
        arr = _as_dtype(data, dtype)
    except ValueError as exc:
        raise InvalidArgument(f"{label}: data does not fit datatype {datatype}: {exc}") from None
    need = math.prod(shape)
    if arr.size != need:
        raise InvalidArgument(f"{label}: shape {shape} needs {need} values, got {arr.size}")
    return spec["name"], arr.reshape(shape)


def _model_input(tensors: dict[str, np.ndarray], schema: InputSchema | None) -> pd.DataFrame | np.ndarray:
    if any(arr.ndim and arr.shape[0] == 0 for arr in tensors.values()):
        raise InvalidArgument(NO_ROWS)
    names = list(tensors)
    if schema is not None and schema.tensor_shape is not None:
        if len(tensors) != 1:
            raise InvalidArgument(f"the model takes one tensor, got {len(tensors)} inputs: {', '.join(names)}")
        return _tensor(tensors[names[0]], schema)
    columns = schema.columns if schema is not None else None
    if len(tensors) == 1 and (columns is None or names[0] not in columns):
        arr = tensors[names[0]]
        if columns is None:
            return arr
        if arr.ndim == 1 and len(columns) == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2:
            raise InvalidArgument(
                f"input {names[0]!r}: expected shape [N, {len(columns)}] (columns {', '.join(columns)}), "
                f"got {list(arr.shape)}"
            )
        return _from_rows(arr, None, schema)
    values: dict[str, Any] = {}
    for name, arr in tensors.items():
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise InvalidArgument(f"input {name!r}: a column needs shape [N] or [N, 1], got {list(arr.shape)}")
        if len(arr) != len(tensors[names[0]]):
            raise InvalidArgument(
                f"input {name!r} has {len(arr)} rows, input {names[0]!r} has {len(tensors[names[0]])}"
            )
        values[name] = arr
    if schema is None or columns is None:
        return pd.DataFrame(values)
    data = {}
    for c, kind in _present(schema, values):
        column = values[c]
        if kind == "binary" and column.dtype == object:  # BYTES are the bytes as text, not base64
            column = [v.encode() if isinstance(v, str) else v for v in column]
        data[c] = _column(c, kind, column)
    return _assemble(data, schema, len(values[names[0]]))


def decode_v2(body: bytes, schema: InputSchema | None) -> tuple[pd.DataFrame | np.ndarray, dict[str, Any]]:
    """(model input, request meta ``{"id", "outputs" (requested output names), "parameters"}``) from a v2
    ``/infer`` request body."""
    if _FIRST.match(body) is None:
        raise InvalidArgument(NO_ROWS)
    request = _loads(body)
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list) or not request["inputs"]:
        raise InvalidArgument(f"the request has no inputs; {_REQUEST}")
    tensors: dict[str, np.ndarray] = {}
    for i, spec in enumerate(request["inputs"]):
        name, arr = _decode_input(i, spec)
        if name in tensors:
            raise InvalidArgument(f"input {name!r} is sent twice")
        tensors[name] = arr
    request_id, parameters, outputs = request.get("id"), request.get("parameters"), request.get("outputs")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidArgument(f"id must be a string, got {_show(request_id)}")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidArgument(f"parameters must be an object, got {_show(parameters)}")
    if outputs is not None and (
        not isinstance(outputs, list)
        or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs)
    ):
        raise InvalidArgument('outputs must be a list of {"name": ...}')
    meta = {"id": request_id, "outputs": [o["name"] for o in outputs or ()], "parameters": parameters or {}}
    return _model_input(tensors, schema), meta


def _text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return base64.b64encode(value).decode()
    return str(value)


def _output(name: str, values: Any) -> dict[str, Any]:
    try:
        arr = np.asarray(values)
    except ValueError:
        raise ValueError(f"output {name!r} is not a regular array (rows of different lengths)") from None
    shape = list(arr.shape) or [1]  # a scalar is one value
    kind = arr.dtype.kind
    if kind == "b":
        datatype = "BOOL"
    elif kind in "iu":
        datatype = f"{'U' if kind == 'u' else ''}INT{arr.dtype.itemsize * 8}"
    elif kind == "f":
        if arr.dtype.itemsize > 8:
            arr = arr.astype(np.float64)
        datatype = f"FP{arr.dtype.itemsize * 8}"
    else:  # text, objects, times: their text as BYTES
        flat = np.datetime_as_string(arr.reshape(-1)) if kind == "M" else arr.reshape(-1)
        return {"name": name, "shape": shape, "datatype": "BYTES", "data": [_text(v) for v in flat.tolist()]}
    return {"name": name, "shape": shape, "datatype": datatype, "data": _plain(arr.reshape(-1))}


def encode_v2(
    predictions: Any,
    *,
    model_name: str,
    model_version: str | None,
    request_id: str | None,
    outputs: Sequence[str] | None = None,
) -> bytes:
    """A v2 ``/infer`` response body. ``outputs`` (the request's, from ``decode_v2``'s meta) keeps only
    those outputs, in that order; an unknown name is an error."""
    if isinstance(predictions, pd.DataFrame):
        named = [(str(c), s.to_numpy()) for c, s in predictions.items()]
    elif isinstance(predictions, pd.Series):
        named = [("predict" if predictions.name is None else str(predictions.name), predictions.to_numpy())]
    elif isinstance(predictions, dict):
        named = [(str(k), v) for k, v in predictions.items()]
    else:
        named = [("predict", predictions)]
    if outputs:
        found = dict(named)
        unknown = [o for o in outputs if o not in found]
        if unknown:
            raise InvalidArgument(f"unknown output {unknown[0]!r} (the model returns: {', '.join(found)})")
        named = [(o, found[o]) for o in outputs]
    response: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        response["model_version"] = model_version
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = [_output(name, values) for name, values in named]
    return _dumps(response)
