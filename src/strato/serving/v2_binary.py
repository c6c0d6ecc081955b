"""Triton's binary tensor extension of the v2 protocol, which ``tritonclient`` uses by default: the body
is a JSON header of ``Inference-Header-Content-Length`` bytes followed by the raw bytes of each input
that has ``parameters.binary_data_size``, in input order. It is turned into the all-JSON form the codec
reads (answers stay JSON, which every v2 client accepts)."""

from __future__ import annotations

import json

import numpy as np

from strato.errors import InvalidArgument

DTYPES = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64,
}  # fmt: skip


def _bytes_elements(raw: bytes) -> list[str]:
    """BYTES tensors: each element is a 4-byte little-endian length and then its bytes."""
    out, at = [], 0
    while at < len(raw):
        size = int.from_bytes(raw[at : at + 4], "little")
        out.append(raw[at + 4 : at + 4 + size].decode("utf-8", errors="replace"))
        at += 4 + size
    return out


def inline_binary(body: bytes, header_length: int) -> bytes:
    if not 0 < header_length <= len(body):
        raise InvalidArgument(
            f"Inference-Header-Content-Length {header_length} does not fit a body of {len(body)} bytes"
        )
    try:
        request = json.loads(body[:header_length])
    except ValueError as exc:
        raise InvalidArgument(f"malformed JSON in the inference header: {exc}") from None
    at = header_length
    for tensor in request.get("inputs", []):
        size = (tensor.get("parameters") or {}).pop("binary_data_size", None)
        if size is None:
            continue
        raw = body[at : at + int(size)]
        if len(raw) != int(size):
            raise InvalidArgument(
                f"input {tensor.get('name')!r}: binary data is shorter than its binary_data_size {size}"
            )
        at += int(size)
        datatype = str(tensor.get("datatype", "")).upper()
        if datatype == "BYTES":
            tensor["data"] = _bytes_elements(raw)
        elif datatype in DTYPES:
            tensor["data"] = np.frombuffer(raw, dtype=DTYPES[datatype]).tolist()
        else:
            raise InvalidArgument(f"input {tensor.get('name')!r}: unknown datatype {datatype!r}")
    return json.dumps(request).encode()
