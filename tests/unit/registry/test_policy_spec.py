"""``ApprovalPolicy`` YAML: what it accepts and how each mistake is reported."""

from __future__ import annotations

import pytest

from strato.errors import InvalidArgument
from strato.specs import KINDS, load_yaml_text
from strato.specs.approval_policy import ApprovalPolicy

GOOD = """\
kind: ApprovalPolicy
name: iris
gates:
  - accuracy >= 0.9
  - rmse < champion.rmse
require: {model_card: true, signature: true, approvals: 2}
on_approval:
  set_alias: champion
  deploy: {endpoint: iris-prod}
"""


def test_full_policy() -> None:
    (spec,) = load_yaml_text(GOOD, "policy.yaml")
    assert isinstance(spec, ApprovalPolicy)
    assert spec.gates == ["accuracy >= 0.9", "rmse < champion.rmse"]
    assert [g.alias for g in spec.parsed_gates()] == [None, "champion"]
    assert (spec.require.model_card, spec.require.signature, spec.require.approvals) == (True, True, 2)
    assert spec.on_approval.set_alias == "champion"
    assert spec.on_approval.deploy is not None and spec.on_approval.deploy.endpoint == "iris-prod"


def test_defaults_and_kind_names() -> None:
    (spec,) = load_yaml_text("kind: ApprovalPolicy\nname: m\n")
    assert isinstance(spec, ApprovalPolicy)
    assert spec.gates == [] and spec.require.approvals == 1 and not spec.require.model_card
    assert spec.on_approval.set_alias is None and spec.on_approval.deploy is None
    for name in ("ApprovalPolicy", "approvalpolicies", "policy", "policies"):
        assert KINDS.get(name) is ApprovalPolicy


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "gates: ['accuracy => 0.9']",
            r"policy.yaml: gates.0: gate 'accuracy => 0.9': unknown operator '=>' \(did you mean '>='\?\)",
        ),
        ("gates: [ok >= 1, 'loss <> 2']", r"gates.1: gate 'loss <> 2': unknown operator '<>' \(did you mean '!='\?\)"),
        ("gates: ['accuracy >= best']", r"gates.0: gate 'accuracy >= best': the right side 'best' must be a number"),
        ("gate: ['accuracy >= 0.9']", r"policy.yaml: gate: unknown field \(did you mean 'gates'\?\)"),
        ("require: {aprovals: 2}", r"require.aprovals: unknown field \(did you mean 'approvals'\?\)"),
        ("require: {approvals: 0}", r"require.approvals: Input should be greater than or equal to 1"),
        ("on_approval: {set_alias: latest}", r"on_approval.set_alias: alias 'latest' is not valid"),
        ("on_approval: {set_alias: v2}", r"on_approval.set_alias: alias 'v2' is not valid"),
        (
            "on_approval: {deploy: {endpont: x}}",
            r"on_approval.deploy.endpont: unknown field \(did you mean 'endpoint'\?\)",
        ),
        ("on_approval: {deploy: {endpoint: 'bad name'}}", r"on_approval.deploy.endpoint: name 'bad name' is not valid"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        load_yaml_text(f"kind: ApprovalPolicy\nname: iris\n{text}\n", "policy.yaml")
