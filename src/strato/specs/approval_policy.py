"""The ``ApprovalPolicy`` resource: what a registered model's versions must pass before they are
Approved (SageMaker's ModelApprovalStatus, with the checks written down), and what happens then.

kind: ApprovalPolicy
name: iris                         # the registered model it governs
gates:                             # each: <metric> <op> <number | alias.metric>
  - accuracy >= 0.9
  - rmse < champion.rmse           # the run metric of the version the alias points at
require: {model_card: true, signature: true, approvals: 2}
on_approval:
  set_alias: champion
  deploy: {endpoint: iris-prod}

Gates are parsed here (so a bad one is refused at apply) and evaluated by ``strato.registry.gates``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field, field_validator

from strato.specs.base import ResourceSpec, StrictModel, check_name

OPERATORS = (">=", ">", "<=", "<", "==", "!=")
# Operators people write by habit, and the one they meant.
_OPERATOR_GUESSES = {"=>": ">=", "=<": "<=", "=": "==", "===": "==", "<>": "!=", "=!": "!=", "~=": "!="}
_GATE_RE = re.compile(r"^\s*(?P<left>[^<>=!~\s]+)\s*(?P<op>[<>=!~]+)\s*(?P<right>[^<>=!~\s]+)\s*$")
_REFERENCE_RE = re.compile(r"^(?P<alias>[A-Za-z_][A-Za-z0-9_-]*)\.(?P<metric>\S+)$")
ALIAS_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")
GATE_FORM = "write '<metric> <operator> <number or alias.metric>', e.g. 'accuracy >= 0.9' or 'rmse < champion.rmse'"


@dataclass(frozen=True)
class Gate:
    """One parsed gate: ``metric op value`` or ``metric op alias.alias_metric``."""

    text: str
    metric: str
    op: str
    value: float | None = None
    alias: str | None = None
    alias_metric: str | None = None

    @property
    def right(self) -> str:
        return f"{self.alias}.{self.alias_metric}" if self.alias else f"{self.value:g}"


def parse_gate(text: str) -> Gate:
    """Parse ``accuracy >= 0.9`` or ``rmse < champion.rmse``; ``ValueError`` names what is wrong."""
    match = _GATE_RE.match(text)
    if match is None:
        raise ValueError(f"gate {text!r} is not understood: {GATE_FORM}")
    left, op, right = match["left"], match["op"], match["right"]
    if op not in OPERATORS:
        guess = _OPERATOR_GUESSES.get(op)
        hint = f" (did you mean {guess!r}?)" if guess else ""
        raise ValueError(f"gate {text!r}: unknown operator {op!r}{hint}; use one of {', '.join(OPERATORS)}")
    try:
        value = float(right)
    except ValueError:
        reference = _REFERENCE_RE.match(right)
        if reference is None:
            raise ValueError(
                f"gate {text!r}: the right side {right!r} must be a number or <alias>.<metric> (e.g. champion.rmse)"
            ) from None
        return Gate(text=text, metric=left, op=op, alias=reference["alias"], alias_metric=reference["metric"])
    if not math.isfinite(value):
        raise ValueError(f"gate {text!r}: the right side must be a finite number")
    return Gate(text=text, metric=left, op=op, value=value)


def _gate_text(text: str) -> str:
    parse_gate(text)
    return text.strip()


GateText = Annotated[str, AfterValidator(_gate_text)]


def check_alias(value: str) -> str:
    """An alias name MLflow accepts: not ``latest``, not ``v<number>`` (those name versions)."""
    if not ALIAS_RE.match(value) or value.lower() == "latest" or re.fullmatch(r"[vV]\d+", value):
        raise ValueError(
            f"alias {value!r} is not valid: use 1-63 letters, digits, '_' or '-', starting with a letter or '_' "
            "(not 'latest' nor v<number>)"
        )
    return value


class Requirements(StrictModel):
    model_card: bool = Field(False, description="a model card must be set on the version")
    signature: bool = Field(False, description="the logged model must have a signature")
    approvals: int = Field(1, ge=1, le=10, description="distinct people who must approve")


class DeployTarget(StrictModel):
    endpoint: str

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return check_name(value)


class OnApproval(StrictModel):
    set_alias: str | None = None
    deploy: DeployTarget | None = None

    @field_validator("set_alias")
    @classmethod
    def _alias(cls, value: str | None) -> str | None:
        return None if value is None else check_alias(value)


class ApprovalPolicy(ResourceSpec):
    """The approval policy of the registered model named ``name``."""

    KIND: ClassVar[str] = "ApprovalPolicy"
    PLURAL: ClassVar[str] = "approvalpolicies"

    kind: str = "ApprovalPolicy"
    gates: list[GateText] = Field(default_factory=list)
    require: Requirements = Field(default_factory=Requirements)
    on_approval: OnApproval = Field(default_factory=OnApproval)

    def parsed_gates(self) -> list[Gate]:
        return [parse_gate(text) for text in self.gates]
