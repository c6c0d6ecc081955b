"""References in strings and the condition language: values in, values out, never eval."""

from __future__ import annotations

from typing import Any

import pytest

from strato.errors import InvalidArgument
from strato.pipelines.refs import (
    Ref,
    condition_refs,
    evaluate_condition,
    find_refs,
    parse_condition,
    resolve_refs,
    substitute_parameters,
)

OUTPUTS = {"prepare": {"data": "file:///a/data"}, "train": {"model": "file:///a/model", "output": "file:///a/out"}}
METRICS = {"train": {"validation:accuracy": 0.93, "loss": 0.2}}
PARAMETERS: dict[str, Any] = {"threshold": 0.9, "n": 8, "mode": "fast", "strict": True}


def evaluate(expression: str) -> bool:
    return evaluate_condition(expression, OUTPUTS, METRICS, PARAMETERS, step="gate")


def test_find_refs_walks_dicts_and_lists_in_order() -> None:
    value = {
        "inputs": {"train": "{{ steps.prepare.outputs.data }}"},
        "args": ["--n", "{{parameters.n}}", "{{ steps.train.metrics[\"loss\"] }} and {{ steps['my-step'].outputs.x }}"],
        "plain": 3,
    }
    assert find_refs(value) == [
        Ref("output", "data", "prepare"),
        Ref("parameter", "n"),
        Ref("metric", "loss", "train"),
        Ref("output", "x", "my-step"),
    ]
    assert str(Ref("metric", "loss", "train")) == "steps.train.metrics['loss']"


def test_unknown_reference_form_is_refused_with_the_forms() -> None:
    with pytest.raises(InvalidArgument, match=r"reference '\{\{ steps.train.model \}\}' is not understood: write"):
        find_refs("{{ steps.train.model }}")


def test_resolve_keeps_the_type_of_a_whole_reference_and_writes_it_out_in_text() -> None:
    value = {
        "n": "{{ parameters.n }}",
        "acc": "{{ steps.train.metrics['validation:accuracy'] }}",
        "cmd": "run --n {{ parameters.n }} --strict {{ parameters.strict }} --in {{ steps.prepare.outputs.data }}",
        "list": ["{{ steps.train.outputs.model }}", 1],
    }
    assert resolve_refs(value, OUTPUTS, METRICS, PARAMETERS) == {
        "n": 8,
        "acc": 0.93,
        "cmd": "run --n 8 --strict true --in file:///a/data",
        "list": ["file:///a/model", 1],
    }


def test_substitute_parameters_leaves_step_references() -> None:
    value = {"a": "{{ parameters.mode }}-{{ steps.train.outputs.model }}", "b": "{{ steps.prepare.outputs.data }}"}
    assert substitute_parameters(value, PARAMETERS) == {
        "a": "fast-{{ steps.train.outputs.model }}",
        "b": "{{ steps.prepare.outputs.data }}",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ parameters.missing }}", r"reference parameters.missing: no parameter 'missing' \(parameters: mode, n,"),
        ("{{ steps.prepare.outputs.model }}", r"step 'prepare' has no output 'model' \(it has: data\)"),
        ("{{ steps.report.outputs.x }}", r"step 'report' has produced no outputs \(yet\)"),
        ("{{ steps.train.metrics['f1'] }}", r"step 'train' has no metric 'f1' \(it has: loss, validation:accuracy\)"),
    ],
)
def test_resolve_names_what_is_missing(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        resolve_refs(text, OUTPUTS, METRICS, PARAMETERS)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("steps.train.metrics['validation:accuracy'] >= parameters.threshold", True),
        ("steps.train.metrics['validation:accuracy'] < parameters.threshold", False),
        ("steps.train.metrics['loss'] == 0.2", True),
        ("steps.train.metrics['loss'] != 0.2", False),
        ("0.1 < steps.train.metrics['loss'] <= 0.3", True),
        ("0.1 < steps.train.metrics['loss'] <= 0.15", False),
        ("parameters.mode in ['fast', 'slow']", True),
        ("parameters.mode not in ('fast',)", False),
        ("parameters.n in [4, 16]", False),
        ("'data' in steps.prepare.outputs.data", True),
        ("steps['prepare'].outputs.data == 'file:///a/data'", True),
        ("parameters.n > 4 and parameters.mode == 'slow'", False),
        ("parameters.n > 4 or parameters.mode == 'slow'", True),
        ("not parameters.n > 4", False),
        ("not (parameters.n > 4 and not parameters.strict)", True),
        ("parameters.strict", True),
        ("parameters.n > -1", True),
        ("parameters.strict == True", True),
    ],
)
def test_condition_semantics(expression: str, expected: bool) -> None:
    assert evaluate(expression) is expected


def test_and_or_short_circuit_like_python() -> None:
    # The right side would name a metric nobody produced; it is never read.
    assert evaluate("parameters.n > 100 and steps.train.metrics['nope'] > 1") is False
    assert evaluate("parameters.n > 1 or steps.train.metrics['nope'] > 1") is True


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('x')", r"Call is not allowed; use comparisons"),
        ("parameters.n + 1 > 2", r"BinOp is not allowed"),
        ("threshold > 1", r"Name 'threshold' is not allowed"),
        ("steps.train.metrics[0] > 1", r"Subscript 'steps.train.metrics\[0\]' is not allowed"),
        ("steps.train.model > 1", r"Attribute 'steps.train.model' is not allowed"),
        ("parameters.n.real > 1", r"Attribute 'parameters.n.real' is not allowed"),
        ("parameters.n is None", r"Is is not allowed"),
        ("[x for x in parameters.n]", r"ListComp is not allowed"),
        ("lambda: 1", r"Lambda is not allowed"),
        ("parameters.n in [parameters.n]", r"Attribute inside a list is not allowed"),
        ("None == parameters.n", r"the constant None is not allowed"),
        ("~parameters.n", r"Invert is not allowed"),
        ("parameters.n >", r"is not a valid expression: invalid syntax"),
        ("{{ parameters.n }} > 1", r"write the expression without \{\{ \}\}"),
    ],
)
def test_conditions_outside_the_subset_are_refused_naming_what(expression: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_condition(expression)


def test_condition_on_a_metric_no_step_produced_names_what_the_step_has() -> None:
    with pytest.raises(
        InvalidArgument,
        match=r"^condition of step 'gate': no step produced metric 'validation:acc' "
        r"\(step 'train' has: loss, validation:accuracy\)$",
    ):
        evaluate("steps.train.metrics['validation:acc'] > 0.5")


def test_condition_on_a_step_without_metrics_says_it_has_none() -> None:
    with pytest.raises(InvalidArgument, match=r"no step produced metric 'f1' \(step 'prepare' has: none\)"):
        evaluate("steps.prepare.metrics['f1'] > 0.5")


def test_condition_errors_name_the_expression_without_a_step() -> None:
    with pytest.raises(InvalidArgument, match=r"^condition 'parameters.x == 1': reference parameters.x: no parameter"):
        evaluate_condition("parameters.x == 1", {}, {}, {})


def test_comparing_incomparable_values_is_an_error_not_a_crash() -> None:
    with pytest.raises(InvalidArgument, match=r"condition of step 'gate': cannot compare 'fast' with 1"):
        evaluate("parameters.mode < 1")


def test_condition_refs_lists_each_reference_once() -> None:
    refs = condition_refs("parameters.n > 1 and parameters.n < 9 or steps['my-step'].metrics['m'] > 0")
    assert refs == [Ref("parameter", "n"), Ref("metric", "m", "my-step")]
