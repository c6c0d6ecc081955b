"""Feature lookup for endpoints (Databricks Model Serving's automatic feature lookup): a request names
entities, the online store supplies the feature service's values, and the model receives those features,
in the service's order, as a ``dataframe_split`` request.

Accepted request bodies (JSON): ``{"dataframe_records": [{...}]}``, ``{"instances": [{...}]}``,
``{"inputs": {"col": [...]}}`` and ``{"dataframe_split": {"columns": [...], "data": [[...]]}}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from strato.errors import InvalidArgument
from strato.features.online_features import OnlineFeatures


@dataclass
class Lookup:
    body: bytes  # what the model receives
    entities: dict[str, list[Any]]  # the request's columns (entity keys, request fields)
    features: dict[str, list[Any]]  # the values served, by output name


def request_columns(body: bytes) -> dict[str, list[Any]]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise InvalidArgument(f"the request is not JSON ({exc}); send entity keys as dataframe_records") from None
    if isinstance(data, dict):
        if isinstance(data.get("dataframe_records"), list):
            data = data["dataframe_records"]
        elif isinstance(data.get("instances"), list):
            data = data["instances"]
        elif isinstance(data.get("inputs"), dict):
            return {k: list(v) if isinstance(v, list) else [v] for k, v in data["inputs"].items()}
        elif isinstance(data.get("dataframe_split"), dict):
            split = data["dataframe_split"]
            return {c: [row[i] for row in split.get("data", [])] for i, c in enumerate(split.get("columns", []))}
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        names = list(dict.fromkeys(k for row in data for k in row))
        return {name: [row.get(name) for row in data] for name in names}
    raise InvalidArgument(
        'this endpoint looks features up by entity: send {"dataframe_records": [{"<join key>": ...}]}'
    )


def lookup(body: bytes, online: OnlineFeatures, service: str) -> Lookup:
    columns = request_columns(body)
    got = online.get(columns, service)
    outputs = online.plan(service, False).outputs
    rows = [list(values) for values in zip(*(got[name] for name in outputs), strict=True)]
    model_body = json.dumps({"dataframe_split": {"columns": outputs, "data": rows}}).encode()
    return Lookup(model_body, columns, {name: got[name] for name in outputs})
