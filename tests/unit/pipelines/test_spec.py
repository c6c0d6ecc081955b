"""The Pipeline spec: each field checked on its own, with a message that names the path and the fix."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from strato.specs.loader import describe_validation_error
from strato.specs.pipeline import (
    ConditionStep,
    Pipeline,
    PipelineParameter,
    ProcessingStep,
    TrainingStep,
    coerce_parameter,
    step_outputs,
)


def prepare(**extra: Any) -> dict[str, Any]:
    return {"name": "prepare", "type": "processing", "command": "python prepare.py", "outputs": ["data"], **extra}


def pipeline(*steps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"kind": "Pipeline", "name": "flow", "steps": list(steps) or [prepare()], **fields}


def problem(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        Pipeline.model_validate(data)
    return describe_validation_error(info.value, "flow.yaml", Pipeline)


def test_full_example_parses_with_units_and_aliases() -> None:
    spec = Pipeline.model_validate(
        pipeline(
            prepare(),
            {
                "name": "train",
                "type": "training",
                "job": {"code": "./src", "command": "python train.py", "spot": {"enabled": True}},
                "inputs": {"train": "{{ steps.prepare.outputs.data }}"},
                "retry": {"attempts": 2, "backoff": "10s"},
                "timeout": "1h",
                "cache": {"enabled": False},
            },
            {"name": "gate", "type": "condition", "if": "parameters.t > 1", "then": ["report"], "else": ["stop"]},
            {"name": "report", "type": "processing", "entrypoint": "report:main", "after": ["gate"]},
            {"name": "stop", "type": "fail", "message": "too low"},
            parameters={"t": {"type": "float", "default": 2}},
            cache={"enabled": True, "expire_after": "7d"},
            on_failure="continue",
        )
    )
    assert spec.KIND == "Pipeline" and spec.PLURAL == "pipelines"
    assert spec.cache.expire_after == 7 * 86400 and spec.on_failure == "continue"
    train = spec.step("train")
    assert isinstance(train, TrainingStep)
    assert train.retry.attempts == 2 and train.retry.backoff == 10 and train.retry.on == ["infrastructure"]
    assert train.timeout == 3600 and train.cache is not None and not train.cache.enabled
    assert step_outputs(train) == ("model", "output")
    gate = spec.step("gate")
    assert isinstance(gate, ConditionStep) and gate.if_ == "parameters.t > 1" and gate.else_ == ["stop"]
    assert gate.model_dump(by_alias=True)["if"] == "parameters.t > 1"
    assert spec.parameters["t"].default == 2.0 and isinstance(spec.parameters["t"].default, float)
    assert spec.step("nope") is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (pipeline(prepare(comand="x")), r"flow.yaml: steps.0.processing.comand: unknown field"),
        (pipeline(extra=1), r"flow.yaml: extra: unknown field"),
        (
            pipeline(prepare(type="trainng")),
            r"step 'prepare': unknown type 'trainng' \(did you mean 'training'\?\); "
            r"known types: processing, training, condition, fail",
        ),
        (pipeline({"name": "x", "command": "a"}), r"step 'x': type is missing; use one of processing, training"),
        (pipeline(prepare(name="my_step")), r"step name 'my_step' is not valid: use 1-40 letters, digits or '-'"),
        (pipeline(prepare(name="a" * 41)), r"step name 'a{41}' is not valid"),
        (pipeline(prepare(), prepare()), r"step name 'prepare' is used twice"),
        (pipeline(prepare(command=None)), r"give either command .* or entrypoint"),
        (pipeline(prepare(entrypoint="m:f")), r"give either command"),
        (pipeline(prepare(command=None, entrypoint="prep.py")), r"entrypoint 'prep.py' must look like module:function"),
        (pipeline(prepare(outputs=["bad-name"])), r"output name 'bad-name' is not valid"),
        (pipeline(prepare(outputs=["a", "a"])), r"outputs lists a name twice"),
        (pipeline(prepare(inputs={"1x": "s3://b"})), r"input channel '1x' must start with a letter"),
        (pipeline(prepare(environment={"A-B": "1"})), r"'A-B' is not a valid environment variable name"),
        (pipeline(prepare(timeout="soon")), r"steps.0.processing.timeout: duration 'soon' is not understood"),
        (pipeline(prepare(retry={"attempts": 0})), r"retry.attempts: Input should be greater than or equal to 1"),
        (pipeline(prepare(retry={"on": ["network"]})), r"retry.on.0: Input should be 'infrastructure' or 'user'"),
        (pipeline(prepare(cache={"expire_after": "0s"})), r"cache.expire_after: a duration must be greater than zero"),
        (pipeline(on_failure="ignore"), r"on_failure: Input should be 'stop' or 'continue'"),
        (pipeline(cache={"enable": True}), r"cache.enable: unknown field"),
        ({"kind": "Pipeline", "name": "flow", "steps": []}, r"steps: List should have at least 1 item"),
        (pipeline({"name": "t", "type": "training", "job": {"name": "x", "command": "a"}}), r"name is not allowed in"),
        (pipeline({"name": "t", "type": "training", "job": {"code": "."}}), r"give either command"),
        (pipeline({"name": "g", "type": "condition", "if": "True"}), r"a condition needs then or else"),
        (
            pipeline({"name": "g", "type": "condition", "if": "1", "then": ["a"], "else": ["a"]}),
            r"step 'a' is in both then and else",
        ),
        (pipeline({"name": "f", "type": "fail"}), r"steps.0.fail.message: required field is missing"),
        (pipeline(parameters={"max-depth": {"type": "int", "default": 1}}), r"parameter name 'max-depth' is not valid"),
        (pipeline(parameters={"n": {"type": "integer"}}), r"unknown parameter type 'integer' \(did you mean 'int'\?\)"),
        (
            pipeline(parameters={"n": {"type": "int", "default": "many"}}),
            r"default must be an int, got 'many' \(string\)",
        ),
        (
            pipeline(parameters={"n": {"type": "int", "default": 2, "allowed": [1, 3]}}),
            r"default 2 is not one of the allowed values \[1, 3\]",
        ),
        (pipeline(parameters={"n": {"type": "int", "allowed": [1, "x"]}}), r"allowed: every value must be an int"),
        (pipeline(parameters={"n": {"type": "bool", "default": 1}}), r"default must be a bool, got 1 \(int\)"),
        (pipeline(parameters={"n": {"type": "int", "dflt": 1}}), r"parameters.n.dflt: unknown field"),
    ],
)
def test_mistakes_are_refused_with_their_path(data: dict[str, Any], message: str) -> None:
    assert re.search(message, problem(data)), problem(data)


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("int", 4, 4),
        ("int", "16", 16),
        ("float", 1, 1.0),
        ("float", "0.5", 0.5),
        ("bool", "TRUE", True),
        ("bool", False, False),
        ("string", "x", "x"),
    ],
)
def test_parameter_values_are_coerced_from_text(kind: str, value: Any, expected: Any) -> None:
    coerced = coerce_parameter(kind, value)
    assert coerced == expected and type(coerced) is type(expected)


@pytest.mark.parametrize(
    ("kind", "value"), [("int", True), ("int", 1.5), ("float", "fast"), ("bool", "yes"), ("string", 3), ("int", None)]
)
def test_wrong_parameter_types_are_refused(kind: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"must be an? {kind}, got"):
        coerce_parameter(kind, value)


def test_parameter_without_default_is_allowed_in_the_spec() -> None:
    assert PipelineParameter.model_validate({"type": "string"}).default is None


def test_processing_step_has_its_declared_outputs() -> None:
    step = ProcessingStep.model_validate(prepare(outputs=["a", "b"]))
    assert step_outputs(step) == ("a", "b")
