"""Approval policy gates: parsing (at apply) and evaluation against run metrics, without a server."""

from __future__ import annotations

import pytest

from strato.registry.gates import Baseline, aliases_needed, evaluate, evaluate_gate
from strato.specs.approval_policy import parse_gate

METRICS = {"accuracy": 0.85, "loss": 0.31}
RUN = "abc123"


def check(text: str, metrics: dict[str, float] = METRICS, **baselines: Baseline | None) -> tuple[bool, str]:
    result = evaluate_gate(parse_gate(text), RUN, metrics, baselines)
    return result.passed, result.message


@pytest.mark.parametrize(
    ("text", "metric", "op", "value", "alias", "alias_metric"),
    [
        ("accuracy >= 0.9", "accuracy", ">=", 0.9, None, None),
        ("  rmse<1e-3 ", "rmse", "<", 0.001, None, None),
        ("val/loss != 2", "val/loss", "!=", 2.0, None, None),
        ("rmse < champion.rmse", "rmse", "<", None, "champion", "rmse"),
        ("f1 >= challenger.val.f1", "f1", ">=", None, "challenger", "val.f1"),
        ("accuracy == -1", "accuracy", "==", -1.0, None, None),
    ],
)
def test_parse(
    text: str, metric: str, op: str, value: float | None, alias: str | None, alias_metric: str | None
) -> None:
    gate = parse_gate(text)
    assert (gate.metric, gate.op, gate.value, gate.alias, gate.alias_metric) == (metric, op, value, alias, alias_metric)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accuracy => 0.9", "unknown operator '=>' (did you mean '>='?); use one of >=, >, <=, <, ==, !="),
        ("accuracy = 0.9", "unknown operator '=' (did you mean '=='?)"),
        ("accuracy ~ 0.9", "unknown operator '~'; use one of"),
        ("accuracy", "is not understood: write '<metric> <operator> <number or alias.metric>'"),
        ("accuracy >= high", "the right side 'high' must be a number or <alias>.<metric>"),
        ("accuracy >= nan", "the right side must be a finite number"),
        ("a b >= 1", "is not understood"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="gate") as caught:
        parse_gate(text)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "passed"),
    [
        ("accuracy >= 0.85", True),
        ("accuracy > 0.85", False),
        ("accuracy <= 0.85", True),
        ("accuracy < 0.9", True),
        ("accuracy == 0.85", True),
        ("accuracy != 0.85", False),
    ],
)
def test_operators(text: str, passed: bool) -> None:
    assert check(text)[0] is passed


def test_failing_gate_names_the_value() -> None:
    assert check("accuracy >= 0.9") == (False, "gate 'accuracy >= 0.9' failed: accuracy = 0.85")
    assert check("loss < 0.5") == (True, "gate 'loss < 0.5' passed: loss = 0.31")


def test_missing_metric_lists_what_the_run_has() -> None:
    assert check("rmse < 1") == (
        False,
        "gate 'rmse < 1' failed: run abc123 has no metric 'rmse' (it has: accuracy, loss)",
    )
    assert check("rmse < 1", {})[1].endswith("run abc123 has no metric 'rmse' (it has no metrics)")


def test_comparison_with_an_alias() -> None:
    champion = Baseline("champion", "3", "run3", {"loss": 0.25})
    passed, message = check("loss < champion.loss", champion=champion)
    assert not passed
    assert message == "gate 'loss < champion.loss' failed: loss = 0.31, champion.loss = 0.25 (champion is version 3)"
    assert check("loss < champion.loss", champion=Baseline("champion", "3", "run3", {"loss": 0.4}))[0]


def test_alias_that_does_not_exist_yet_passes_with_a_note() -> None:
    passed, message = check("loss < champion.loss", champion=None)
    assert passed
    assert "the model has no alias 'champion' yet, so there is nothing to compare with" in message


def test_alias_version_without_the_metric_fails() -> None:
    passed, message = check("loss < champion.loss", champion=Baseline("champion", "2", "run2", {"acc": 1.0}))
    assert not passed
    assert "champion (version 2, run run2) has no metric 'loss' (it has: acc)" in message


def test_evaluate_keeps_order_and_lists_aliases() -> None:
    gates = [
        parse_gate(t) for t in ("accuracy >= 0.9", "loss < champion.loss", "loss < challenger.loss", "a < champion.a")
    ]
    assert aliases_needed(gates) == ["champion", "challenger"]
    results = evaluate(gates, RUN, METRICS, {"champion": None, "challenger": None})
    assert [r.passed for r in results] == [False, True, True, False]
    assert results[0].to_dict() == {"gate": "accuracy >= 0.9", "passed": False, "message": results[0].message}
