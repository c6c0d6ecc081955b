"""Evaluating an approval policy's gates against run metrics: pure functions, no server.

The caller gathers the version's run metrics and, for every alias a gate compares with, the metrics of
the version the alias points at (``Baseline``; ``None`` when the alias does not exist yet, and then the
gate passes with a note: there is nothing to beat).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from strato.specs.approval_policy import Gate

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class Baseline:
    """The version an alias points at, and its run's metrics."""

    alias: str
    version: str
    run_id: str
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    message: str

    def to_dict(self) -> dict[str, object]:
        return {"gate": self.gate, "passed": self.passed, "message": self.message}


def _num(value: float) -> str:
    return f"{value:g}"


def _has(metrics: Mapping[str, float]) -> str:
    return f"(it has: {', '.join(sorted(metrics))})" if metrics else "(it has no metrics)"


def evaluate_gate(
    gate: Gate, run_id: str, metrics: Mapping[str, float], baselines: Mapping[str, Baseline | None]
) -> GateResult:
    def result(passed: bool, detail: str) -> GateResult:
        return GateResult(gate.text, passed, f"gate {gate.text!r} {'passed' if passed else 'failed'}: {detail}")

    if gate.metric not in metrics:
        return result(False, f"run {run_id} has no metric {gate.metric!r} {_has(metrics)}")
    left = float(metrics[gate.metric])
    shown = f"{gate.metric} = {_num(left)}"
    if gate.alias is None:
        assert gate.value is not None
        return result(_COMPARE[gate.op](left, gate.value), shown)
    assert gate.alias_metric is not None
    baseline = baselines.get(gate.alias)
    if baseline is None:
        return result(True, f"{shown}; the model has no alias {gate.alias!r} yet, so there is nothing to compare with")
    if gate.alias_metric not in baseline.metrics:
        return result(
            False,
            f"{gate.alias} (version {baseline.version}, run {baseline.run_id}) has no metric "
            f"{gate.alias_metric!r} {_has(baseline.metrics)}",
        )
    right = float(baseline.metrics[gate.alias_metric])
    detail = f"{shown}, {gate.right} = {_num(right)} ({gate.alias} is version {baseline.version})"
    return result(_COMPARE[gate.op](left, right), detail)


def evaluate(
    gates: Sequence[Gate], run_id: str, metrics: Mapping[str, float], baselines: Mapping[str, Baseline | None]
) -> list[GateResult]:
    """One result per gate, in order; a version may be approved only when every one passed."""
    return [evaluate_gate(gate, run_id, metrics, baselines) for gate in gates]


def aliases_needed(gates: Sequence[Gate]) -> list[str]:
    """The aliases the gates compare with, once each, in order."""
    return list(dict.fromkeys(gate.alias for gate in gates if gate.alias))
