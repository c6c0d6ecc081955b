"""The serving codec: every request format, every schema check and its message, responses, v2, batching."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from strato.errors import ErrorCode, InvalidArgument, PayloadTooLarge
from strato.serving.codec import (
    InputSchema,
    concat_inputs,
    decode_invocation,
    encode_predictions,
    schema_from_signature,
    split_outputs,
)
from strato.serving.v2 import decode_v2, encode_v2

IRIS_COLUMNS = ("sepal_length", "sepal_width", "petal_length", "petal_width")
IRIS = InputSchema(columns=IRIS_COLUMNS, types=("double",) * 4)
TENSOR = InputSchema(tensor_shape=(-1, 4), tensor_dtype="float32")
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]
IRIS_FRAME = pd.DataFrame(ROWS, columns=list(IRIS_COLUMNS))
RECORDS = [dict(zip(IRIS_COLUMNS, row, strict=True)) for row in ROWS]


def body(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def rejected(data: bytes, schema: InputSchema | None = IRIS, content_type: str | None = "application/json") -> str:
    with pytest.raises(InvalidArgument) as info:
        decode_invocation(data, content_type, schema)
    assert info.value.http_status == 400
    return info.value.message


# ---- schemas from real MLflow signatures ----------------------------------------------------------------


def test_schema_from_an_inferred_iris_signature() -> None:
    from mlflow.models import infer_signature
    from mlflow.models.signature import ModelSignature
    from mlflow.types import Schema, TensorSpec

    schema = schema_from_signature(infer_signature(IRIS_FRAME, np.array([0, 1])))
    assert schema == InputSchema(columns=IRIS_COLUMNS, types=("double",) * 4)
    frame = decode_invocation(body({"instances": ROWS}), "application/json", schema)
    pd.testing.assert_frame_equal(frame, IRIS_FRAME)

    with_gaps = IRIS_FRAME.assign(petal_width=[0.2, np.nan])  # MLflow marks a column with NaN optional
    schema = schema_from_signature(infer_signature(with_gaps, np.array([0, 1])))
    assert schema is not None and schema.optional == frozenset({"petal_width"})
    left_out = decode_invocation(body({"dataframe_records": [{c: 1.0 for c in IRIS_COLUMNS[:3]}]}), None, schema)
    assert list(left_out.columns) == list(IRIS_COLUMNS)  # kept, as missing values: the layout is the trained one
    assert np.isnan(left_out["petal_width"][0])

    tensor = ModelSignature(inputs=Schema([TensorSpec(np.dtype("float32"), (-1, 4))]))
    assert schema_from_signature(tensor) == TENSOR
    assert schema_from_signature(None) is None


# ---- JSON formats ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"columns": list(IRIS_COLUMNS), "data": ROWS}},
        {  # another column order and an extra column: reordered, dropped
            "dataframe_split": {
                "columns": ["petal_width", "extra", *IRIS_COLUMNS[:3]],
                "data": [[r[3], "x", *r[:3]] for r in ROWS],
            }
        },
        {"dataframe_records": [{**r, "extra": 1} for r in RECORDS]},
        {"instances": ROWS},
        {"instances": RECORDS},
        {"instances": {c: [r[i] for r in ROWS] for i, c in enumerate(IRIS_COLUMNS)}},
        {"inputs": ROWS},
        {"inputs": {c: [r[i] for r in ROWS] for i, c in enumerate(IRIS_COLUMNS)}},
        RECORDS,
        ROWS,
        {c: [r[i] for r in ROWS] for i, c in enumerate(IRIS_COLUMNS)},
        {"instances": [[int(v) if v.is_integer() else v for v in r] for r in ROWS]},  # ints for doubles
        {"instances": [[str(v) for v in r] for r in ROWS]},  # numbers as text
    ],
)
@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", None])
def test_every_json_format_gives_the_schemas_frame(payload: Any, content_type: str | None) -> None:
    frame = decode_invocation(body(payload), content_type, IRIS)
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), IRIS_FRAME)


def test_a_single_record_object_is_one_row_and_split_keeps_its_index() -> None:
    one = decode_invocation(body(RECORDS[0]), None, IRIS)
    pd.testing.assert_frame_equal(one, IRIS_FRAME.iloc[:1])
    split = {"dataframe_split": {"columns": list(IRIS_COLUMNS), "data": ROWS, "index": ["a", "b"]}}
    assert list(decode_invocation(body(split), None, IRIS).index) == ["a", "b"]


def test_types_are_coerced_to_the_schema() -> None:
    schema = InputSchema(
        columns=("x", "f", "n", "i", "flag", "name", "blob", "ts", "tags"),
        types=("double", "float", "long", "integer", "boolean", "string", "binary", "datetime", "any"),
    )
    record = {
        "x": 1,
        "f": "2.5",
        "n": 3.0,
        "i": "4",
        "flag": "true",
        "name": "iris",
        "blob": base64.b64encode(b"\x00\x01").decode(),
        "ts": "2024-05-01T12:00:00",
        "tags": [1, 2],
    }
    frame = decode_invocation(body([record, {**record, "x": None, "flag": False, "name": None}]), None, schema)
    assert list(frame.columns) == list(schema.columns or ())
    assert frame.dtypes.astype(str).tolist()[:5] == ["float64", "float32", "int64", "int32", "bool"]
    assert frame["x"].tolist()[0] == 1.0 and np.isnan(frame["x"][1])  # null: a missing value
    assert frame["flag"].tolist() == [True, False]
    assert frame["name"][0] == "iris" and pd.isna(frame["name"][1])
    assert frame["blob"][0] == b"\x00\x01"
    assert frame["ts"][0] == pd.Timestamp("2024-05-01T12:00:00")
    assert frame["tags"][0] == [1, 2]


def test_no_schema_gives_what_was_sent() -> None:
    arr = decode_invocation(body([[1, 2], [3, 4.5]]), None, None)
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float64 and arr.tolist() == [[1.0, 2.0], [3.0, 4.5]]
    mixed = decode_invocation(body({"instances": [[1, "a"], [2, "b"]]}), None, None)
    assert isinstance(mixed, pd.DataFrame) and mixed[1].tolist() == ["a", "b"]
    pd.testing.assert_frame_equal(decode_invocation(body(RECORDS), None, None), IRIS_FRAME)
    split = {"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"]], "index": [7]}}
    pd.testing.assert_frame_equal(decode_invocation(body(split), None, None), pd.DataFrame({"a": [1], "b": ["x"]}, [7]))
    pd.testing.assert_frame_equal(decode_invocation(body({"a": [1, 2]}), None, None), pd.DataFrame({"a": [1, 2]}))


def test_tensor_schema_gives_an_array_of_its_dtype_and_shape() -> None:
    for payload in ({"instances": ROWS}, ROWS, {"dataframe_split": {"columns": list(IRIS_COLUMNS), "data": ROWS}}):
        arr = decode_invocation(body(payload), "application/json", TENSOR)
        assert isinstance(arr, np.ndarray) and arr.dtype == np.float32 and arr.shape == (2, 4)
    assert decode_invocation(body(RECORDS), None, TENSOR).shape == (2, 4)
    assert rejected(body([[1, 2, 3], [4, 5, 6]]), TENSOR) == "expected shape (-1, 4), got (2, 3)"
    assert "could not convert string to float: 'abc'" in rejected(body([[1, 2, 3, "abc"]]), TENSOR)
    assert rejected(body([[1, 2, 3, 4], [1]]), TENSOR).endswith("rows of different lengths")
    ints = InputSchema(tensor_shape=(-1,), tensor_dtype="int64")
    assert decode_invocation(b"[1, 2]", None, ints).tolist() == [1, 2]
    assert rejected(b"[1, 2.5]", ints) == "expected a int64 tensor of shape (-1,): expected integers, got 2.5"


# ---- CSV -----------------------------------------------------------------------------------------------------


def test_csv_without_and_with_a_header() -> None:
    plain = b"5.1,3.5,1.4,0.2\n6.2,2.9,4.3,1.3\n"
    pd.testing.assert_frame_equal(decode_invocation(plain, "text/csv", IRIS), IRIS_FRAME)
    headed = ",".join(IRIS_COLUMNS).encode() + b"\r\n" + plain
    pd.testing.assert_frame_equal(decode_invocation(headed, "text/csv; charset=utf-8", IRIS), IRIS_FRAME)
    assert np.isnan(decode_invocation(b"5.1,,1.4,0.2", "text/csv", IRIS)["sepal_width"][0])  # empty: missing
    arr = decode_invocation(plain, None, None)  # no content type and not JSON: CSV
    assert isinstance(arr, np.ndarray) and arr.tolist() == ROWS
    mixed = decode_invocation(b'1,"a, b"\n2,c\n', "text/csv", None)
    assert mixed[0].tolist() == [1.0, 2.0] and mixed[1].tolist() == ["a, b", "c"]
    assert decode_invocation(plain, "text/csv", TENSOR).dtype == np.float32


def test_csv_errors_name_the_row() -> None:
    data = b"1,2,3,4\n1,2,3,4\n1,2,3,4,5\n"
    assert rejected(data, IRIS, "text/csv") == "CSV row 3 has 5 fields, expected 4"
    assert rejected(b"1,2\n1,2,3\n", None, "text/csv") == "CSV row 2 has 3 fields, expected 2"
    assert rejected(b"1,abc,3,4", IRIS, "text/csv") == "column 'sepal_width': expected a number, got 'abc'"
    assert rejected(b"\xff\xfe,1", IRIS, "text/csv") == "the CSV body is not UTF-8 text"


# ---- errors, each with the message that names the fix ----------------------------------------------------


def test_missing_columns_are_named_with_the_full_list() -> None:
    records = [{c: 1.0 for c in IRIS_COLUMNS[:3]}]
    assert rejected(body({"dataframe_records": records})) == (
        "missing column 'petal_width' (the model takes: sepal_length, sepal_width, petal_length, petal_width)"
    )
    split = {"dataframe_split": {"columns": ["sepal_length", "petal_length"], "data": [[1, 2]]}}
    assert rejected(body(split)).startswith("missing columns 'sepal_width', 'petal_width' (the model takes: ")


@pytest.mark.parametrize(
    ("data", "content_type", "message"),
    [
        (body([[1, 2, 3]]), "application/json", "expected 4 features per row, got 3 (row 1)"),
        (body([[1, 2, 3, 4], [1, 2, 3]]), "application/json", "expected 4 features per row, got 3 (row 2)"),
        (body([1, 2, 3, 4]), "application/json", "expected 4 features per row, got a single value (row 1)"),
        (body([[1, "abc", 3, 4]]), None, "column 'sepal_width': expected a number, got 'abc'"),
        (body([[1, [2], 3, 4]]), None, "column 'sepal_width': expected a number, got [2]"),
        (b'{"a": }', "application/json", "malformed JSON at line 1 column 7: Expecting value"),
        (b"\xff[1]", "application/json", "the body is not UTF-8 text"),
        (b"<a/>", "text/xml", "unsupported content type 'text/xml' (use application/json or text/csv)"),
        (b"", "application/json", "the request has no rows"),
        (b" \n", None, "the request has no rows"),
        (b"[]", None, "the request has no rows"),
        (b"{}", None, "the request has no rows"),
        (body({"instances": []}), None, "the request has no rows"),
        (body({"dataframe_split": {"columns": [], "data": []}}), None, "the request has no rows"),
        (body({"sepal_length": []}), None, "the request has no rows"),
        (",".join(IRIS_COLUMNS).encode(), "text/csv", "the request has no rows"),
        (body({"instances": ROWS, "inputs": ROWS}), None, "send only one of instances, inputs"),
        (body({"dataframe_records": [RECORDS[0], 5]}), None, "dataframe_records item 2 is not an object"),
        (body({"dataframe_records": {"a": 1}}), None, "dataframe_records must be a list of records"),
        (body({"dataframe_split": [[1]]}), None, "dataframe_split must be"),
        (
            body({"dataframe_split": {"columns": list(IRIS_COLUMNS), "data": [[1, 2, 3]]}}),
            None,
            "dataframe_split row 1 has 3 values, expected 4 (one per column)",
        ),
        (
            body({"dataframe_split": {"columns": list(IRIS_COLUMNS), "data": ROWS, "index": [1]}}),
            None,
            "dataframe_split has 1 index values for 2 rows",
        ),
        (body({"a": [1, 2], "b": [3]}), None, "column 'b' has 1 values, expected 2 like the others"),
        (body({"a": {"b": 1}}), None, "column 'a' must be a list of values; send "),
        (body(5), "application/json", "unsupported JSON payload in the request: send "),
    ],
)
def test_bad_payloads_are_400s_that_say_what_to_fix(data: bytes, content_type: str | None, message: str) -> None:
    assert rejected(data, IRIS, content_type).startswith(message)


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("long", 1.5, "column 'c': expected an integer, got 1.5"),
        ("long", None, "column 'c': expected an integer, got null"),
        ("integer", 2**40, "column 'c': 1099511627776 does not fit a 32-bit integer"),
        ("boolean", "maybe", "column 'c': expected a boolean, got 'maybe'"),
        ("string", 5, "column 'c': expected a string, got 5"),
        ("binary", "not base64!", "column 'c': expected base64-encoded bytes, got 'not base64!'"),
        ("datetime", "soon", "column 'c': expected an ISO-8601 date-time, got 'soon'"),
        ("double", {"a": 1}, "column 'c': expected a number, got {\"a\": 1}"),
    ],
)
def test_type_errors_name_the_column_and_value(kind: str, value: Any, message: str) -> None:
    schema = InputSchema(columns=("c",), types=(kind,))
    assert rejected(body([{"c": value}]), schema) == message


def test_no_schema_rows_of_different_lengths() -> None:
    assert rejected(body([[1, 2], [3]]), None) == "expected 2 features per row, got 1 (row 2)"


# ---- responses ---------------------------------------------------------------------------------------------


def test_json_predictions() -> None:
    def encoded(predictions: Any, accept: str | None = None) -> Any:
        data, content_type = encode_predictions(predictions, accept)
        assert content_type == "application/json"
        return json.loads(data)["predictions"]

    assert encoded(np.array([0, 2, 1])) == [0, 2, 1]
    assert encoded(np.array([[0.5, np.nan], [np.inf, 1.0]], dtype=np.float32)) == [[0.5, None], [None, 1.0]]
    assert encoded(pd.Series([1.5, 2.5])) == [1.5, 2.5]
    frame = pd.DataFrame({"label": ["a", None], "p": [0.25, np.nan], "t": pd.to_datetime(["2024-01-01", None])})
    assert encoded(frame) == [
        {"label": "a", "p": 0.25, "t": "2024-01-01T00:00:00"},
        {"label": None, "p": None, "t": None},
    ]
    assert encoded({"scores": np.array([0.5]), "n": np.int64(3)}, "*/*") == {"scores": [0.5], "n": 3}
    assert encoded([np.float32(0.5), float("nan")]) == [0.5, None]
    assert encoded(np.float64(2.0), "application/json, text/csv") == 2.0  # JSON named first


def test_csv_predictions_have_no_header() -> None:
    assert encode_predictions(np.array([0, 1]), "text/csv") == (b"0\n1\n", "text/csv")
    assert encode_predictions(np.array([[0.5, np.nan]]), "text/csv;q=0.9")[0] == b"0.5,\n"
    frame = pd.DataFrame({"label": ["a", "b,c"], "p": [1, 2]})
    assert encode_predictions(frame, "text/csv")[0] == b'a,1\n"b,c",2\n'
    assert encode_predictions([{"a": 1, "b": 2}], "text/csv")[0] == b"1,2\n"
    assert encode_predictions({"a": [1, 2], "b": [3, 4]}, "text/csv")[0] == b"1,3\n2,4\n"
    with pytest.raises(InvalidArgument, match=r"predictions of shape \(1, 1, 1\) do not fit CSV rows"):
        encode_predictions(np.zeros((1, 1, 1)), "text/csv")


# ---- Open Inference Protocol v2 -----------------------------------------------------------------------------


def v2_request(*inputs: dict[str, Any], **extra: Any) -> bytes:
    return body({"inputs": list(inputs), **extra})


def test_v2_one_tensor() -> None:
    request = v2_request(
        {"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": [v for r in ROWS for v in r]},
        id="req-1",
        parameters={"trace": True},
        outputs=[{"name": "predict"}],
    )
    arr, meta = decode_v2(request, None)
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32 and arr.shape == (2, 4)
    assert meta == {"id": "req-1", "outputs": ["predict"], "parameters": {"trace": True}}
    assert decode_v2(request, TENSOR)[0].shape == (2, 4)
    frame, _ = decode_v2(request, IRIS)  # a columns schema: columns by position
    pd.testing.assert_frame_equal(frame, IRIS_FRAME.astype(np.float32).astype(np.float64))
    nested = v2_request({"name": "x", "shape": [2, 2], "datatype": "INT64", "data": [[1, 2], [3, 4]]})
    assert decode_v2(nested, None)[0].tolist() == [[1, 2], [3, 4]]


def test_v2_named_inputs_are_columns() -> None:
    columns = [
        {"name": c, "shape": [2, 1], "datatype": "FP64", "data": [r[i] for r in ROWS]}
        for i, c in enumerate(IRIS_COLUMNS)
    ]
    extra = {"name": "note", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]}
    frame, meta = decode_v2(v2_request(*reversed(columns), extra), IRIS)
    pd.testing.assert_frame_equal(frame, IRIS_FRAME)
    assert meta == {"id": None, "outputs": [], "parameters": {}}
    unchecked, _ = decode_v2(v2_request(columns[0], extra), None)
    assert list(unchecked.columns) == ["sepal_length", "note"] and unchecked["note"].tolist() == ["a", "b"]
    with pytest.raises(InvalidArgument, match="missing column 'petal_width'"):
        decode_v2(v2_request(*columns[:3]), IRIS)


@pytest.mark.parametrize(
    ("inputs", "schema", "message"),
    [
        (
            [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": [1] * 7}],
            None,
            "input 'input-0': shape [2, 4] needs 8 values, got 7",
        ),
        (
            [{"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1]}],
            None,
            "input 'x': unknown datatype 'FLOAT' (use one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, "
            "INT32, INT64, FP16, FP32, FP64, BYTES)",
        ),
        (
            [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1.5]}],
            None,
            "input 'x': data does not fit datatype INT32: expected integers, got 1.5",
        ),
        (
            [{"name": "x", "shape": [1], "datatype": "UINT8", "data": [300]}],
            None,
            "input 'x': data does not fit datatype UINT8: values must lie in [0, 255] for uint8",
        ),
        (
            [{"name": "x", "shape": [1], "datatype": "BOOL", "data": [2]}],
            None,
            "input 'x': data does not fit datatype BOOL: expected true or false",
        ),
        ([{"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}], None, "input 'x': shape must be"),
        ([{"name": "x", "shape": [1], "datatype": "FP32"}], None, "input 'x': \"data\" must be a list"),
        ([{"shape": [1]}], None, "input 0 needs a name, shape, datatype and data"),
        ([], None, "the request has no inputs"),
        (
            [
                {"name": "a", "shape": [2], "datatype": "FP32", "data": [1, 2]},
                {"name": "b", "shape": [3], "datatype": "FP32", "data": [1, 2, 3]},
            ],
            None,
            "input 'b' has 3 rows, input 'a' has 2",
        ),
        (
            [{"name": "a", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}] * 2,
            None,
            "input 'a' is sent twice",
        ),
        (
            [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1] * 6}],
            TENSOR,
            "expected shape (-1, 4), got (2, 3)",
        ),
        (
            [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1] * 6}],
            IRIS,
            "expected 4 features per row, got 3 (row 1)",
        ),
        ([{"name": "x", "shape": [0, 4], "datatype": "FP32", "data": []}], IRIS, "the request has no rows"),
    ],
)
def test_v2_errors(inputs: list[dict[str, Any]], schema: InputSchema | None, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        decode_v2(v2_request(*inputs), schema)
    assert info.value.message.startswith(message)


def test_v2_request_fields_are_checked() -> None:
    one = {"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}
    for extra, message in [
        ({"id": 5}, "id must be a string, got 5"),
        ({"parameters": []}, "parameters must be an object"),
        ({"outputs": ["predict"]}, 'outputs must be a list of {"name": ...}'),
    ]:
        with pytest.raises(InvalidArgument, match=message):
            decode_v2(v2_request(one, **extra), None)
    with pytest.raises(InvalidArgument, match="malformed JSON at line 1 column 2"):
        decode_v2(b"{,", None)


def test_v2_responses() -> None:
    response = json.loads(encode_v2(np.array([[1.0, np.nan]]), model_name="iris", model_version="3", request_id="r"))
    assert response == {
        "model_name": "iris",
        "model_version": "3",
        "id": "r",
        "outputs": [{"name": "predict", "shape": [1, 2], "datatype": "FP64", "data": [1.0, None]}],
    }
    frame = pd.DataFrame({"label": ["setosa", "virginica"], "p": np.array([0.5, 0.25], dtype=np.float32)})
    outputs = json.loads(encode_v2(frame, model_name="m", model_version=None, request_id=None))
    assert "model_version" not in outputs and "id" not in outputs
    assert outputs["outputs"] == [
        {"name": "label", "shape": [2], "datatype": "BYTES", "data": ["setosa", "virginica"]},
        {"name": "p", "shape": [2], "datatype": "FP32", "data": [0.5, 0.25]},
    ]
    kinds = {
        "BOOL": np.array([True]),
        "UINT8": np.array([1], dtype=np.uint8),
        "INT32": np.array([1], dtype=np.int32),
        "INT64": [1, 2],
        "FP16": np.array([0.5], dtype=np.float16),
    }
    for datatype, values in kinds.items():
        (out,) = json.loads(encode_v2(values, model_name="m", model_version=None, request_id=None))["outputs"]
        assert out["datatype"] == datatype
    only_p = json.loads(encode_v2(frame, model_name="m", model_version=None, request_id=None, outputs=["p"]))
    assert [o["name"] for o in only_p["outputs"]] == ["p"]
    with pytest.raises(InvalidArgument, match=r"unknown output 'q' \(the model returns: label, p\)"):
        encode_v2(frame, model_name="m", model_version=None, request_id=None, outputs=["q"])


def test_v2_round_trip_through_tritonclient() -> None:
    http = pytest.importorskip("tritonclient.http")
    request = v2_request({"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": ROWS})
    arr, meta = decode_v2(request, TENSOR)
    predictions = pd.DataFrame({"label": ["setosa", "virginica"], "score": arr.sum(axis=1)})
    result = http.InferResult.from_response_body(
        encode_v2(predictions, model_name="iris", model_version="1", request_id=meta["id"])
    )
    assert result.as_numpy("label").tolist() == ["setosa", "virginica"]
    np.testing.assert_allclose(result.as_numpy("score"), arr.sum(axis=1))
    plain = http.InferResult.from_response_body(encode_v2(arr, model_name="iris", model_version=None, request_id=None))
    np.testing.assert_array_equal(plain.as_numpy("predict"), arr)


# ---- batching -------------------------------------------------------------------------------------------------


def test_concat_and_split_round_trip() -> None:
    frames = [decode_invocation(body(RECORDS), None, IRIS), decode_invocation(body(ROWS[:1]), None, IRIS)]
    batch = concat_inputs(frames)
    assert isinstance(batch, pd.DataFrame) and len(batch) == 3 and list(batch.index) == [0, 1, 2]
    lengths = [len(f) for f in frames]
    labels, last = split_outputs(np.array([0, 1, 2]), lengths)
    assert labels.tolist() == [0, 1] and last.tolist() == [2]
    parts = split_outputs(batch, lengths)
    pd.testing.assert_frame_equal(parts[0], frames[0])
    assert [len(p) for p in split_outputs(pd.Series([1, 2, 3]), lengths)] == [2, 1]
    assert split_outputs([1, 2, 3], lengths) == [[1, 2], [3]]
    assert split_outputs({"a": np.arange(3)}, lengths)[1]["a"].tolist() == [2]

    arrays = [np.zeros((2, 4)), np.ones((1, 4))]
    assert concat_inputs(arrays).shape == (3, 4)
    assert concat_inputs(arrays[:1]) is arrays[0]
    with pytest.raises(ValueError, match="the model returned 2 predictions for 3 rows"):
        split_outputs(np.zeros(2), [2, 1])
    with pytest.raises(ValueError, match="different columns"):
        concat_inputs([frames[0], frames[0][["sepal_width"]]])
    with pytest.raises(ValueError, match="shape or dtype"):
        concat_inputs([np.zeros((1, 4)), np.zeros((1, 3))])
    with pytest.raises(ValueError, match="mix"):
        concat_inputs([frames[0], arrays[0]])


def test_payload_too_large_is_a_413() -> None:
    error = PayloadTooLarge("the body is 12 MB; the limit is 6 MB")
    assert error.code is ErrorCode.PAYLOAD_TOO_LARGE and error.http_status == 413
    assert error.to_dict()["code"] == "PAYLOAD_TOO_LARGE"


def test_decode_v2_and_encode_v2_are_importable_from_the_codec_too() -> None:
    from strato.serving import codec

    assert codec.decode_v2 is decode_v2 and codec.encode_v2 is encode_v2


def test_odd_payloads_are_400s_never_crashes() -> None:
    """Random JSON shapes of the right vocabulary: whatever comes in, the answer is a model input or a 400."""
    rng = np.random.default_rng(7)
    atoms: list[Any] = [0, 1.5, 2**70, "x", "", "1", None, True, [], {}, [1, 2], {"a": 1}, "2024-01-01", float("nan")]
    keys = ["a", "b", "dataframe_split", "dataframe_records", "instances", "inputs", "columns", "data", "index"]
    keys += ["name", "shape", "datatype"]

    def value(depth: int = 0) -> Any:
        r = rng.random()
        if depth > 2 or r < 0.3:
            return atoms[rng.integers(len(atoms))]
        if r < 0.6:
            return [value(depth + 1) for _ in range(rng.integers(4))]
        return {keys[rng.integers(len(keys))]: value(depth + 1) for _ in range(rng.integers(4))}

    schemas = [None, InputSchema(columns=("a", "b"), types=("double", "long")), TENSOR]
    schemas.append(InputSchema(columns=("a", "b"), types=("boolean", "datetime"), optional=frozenset({"b"})))
    for _ in range(150):
        data = body(value())
        for schema in schemas:
            with contextlib.suppress(InvalidArgument):
                decode_invocation(data, None, schema)
            with contextlib.suppress(InvalidArgument):
                decode_v2(data, schema)
