"""References between steps and the condition language.

In strings, ``{{ parameters.P }}``, ``{{ steps.S.outputs.O }}`` and ``{{ steps.S.metrics['m'] }}`` are
replaced by values. A string that is one reference and nothing else takes the value itself (an int
parameter stays an int in hyperparameters); inside longer text the value is written out.

A condition's ``if:`` is a Python expression from a checked subset, parsed with ``ast`` and walked by a
small evaluator here (never ``eval``): comparisons (== != < <= > >= in, not in), and/or/not, numbers,
strings, booleans, lists of constants, and the operands ``parameters.P``, ``steps.S.outputs.O`` and
``steps.S.metrics['m']``. ``steps['S']`` works too, for step names with '-', which are not attributes.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from strato.errors import InvalidArgument

REF_RE = re.compile(r"\{\{\s*((?:(?!\}\}).)*?)\s*\}\}")
_STEP = r"steps(?:\.(?P<step>[A-Za-z0-9][A-Za-z0-9-]*)|\[(?P<q1>['\"])(?P<qstep>[^'\"]+)(?P=q1)\])"
_PARAMETER_RE = re.compile(r"^parameters\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")
_OUTPUT_RE = re.compile(rf"^{_STEP}\.outputs\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")
_METRIC_RE = re.compile(rf"^{_STEP}\.metrics\[(?P<q2>['\"])(?P<name>.+?)(?P=q2)\]$")
REF_FORMS = "{{ parameters.P }}, {{ steps.S.outputs.O }} or {{ steps.S.metrics['name'] }}"
OPERAND_FORMS = "parameters.P, steps.S.outputs.O or steps.S.metrics['name']"

RefKind = Literal["parameter", "output", "metric"]
Outputs = Mapping[str, Mapping[str, str]]
Metrics = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class Ref:
    """One reference: a parameter (``step`` is None), a step's output or a step's metric."""

    kind: RefKind
    name: str
    step: str | None = None

    def __str__(self) -> str:
        if self.kind == "parameter":
            return f"parameters.{self.name}"
        if self.kind == "output":
            return f"steps.{self.step}.outputs.{self.name}"
        return f"steps.{self.step}.metrics[{self.name!r}]"


def parse_ref(text: str) -> Ref:
    """The reference inside ``{{ }}``; InvalidArgument when it is none of the known forms."""
    inner = text.strip()
    if match := _PARAMETER_RE.match(inner):
        return Ref("parameter", match["name"])
    for kind, pattern in (("output", _OUTPUT_RE), ("metric", _METRIC_RE)):
        if match := pattern.match(inner):
            return Ref(kind, match["name"], match["step"] or match["qstep"])  # type: ignore[arg-type]
    raise InvalidArgument(f"reference '{{{{ {inner} }}}}' is not understood: write {REF_FORMS}")


def find_refs(value: Any) -> list[Ref]:
    """Every reference in the strings of ``value`` (recursively through dicts and lists), in order."""
    found: list[Ref] = []
    if isinstance(value, str):
        found.extend(parse_ref(m.group(1)) for m in REF_RE.finditer(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            found.extend(find_refs(item))
    elif isinstance(value, list | tuple):
        for item in value:
            found.extend(find_refs(item))
    return found


def _text(value: Any) -> str:
    # Booleans as YAML and command lines write them; everything else as Python prints it.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def lookup(ref: Ref, outputs: Outputs, metrics: Metrics, parameters: Mapping[str, Any]) -> Any:
    """The value of ``ref``; InvalidArgument naming what is missing and what there is."""
    if ref.kind == "parameter":
        if ref.name not in parameters:
            raise InvalidArgument(f"reference {ref}: no parameter {ref.name!r} (parameters: {_names(parameters)})")
        return parameters[ref.name]
    assert ref.step is not None
    source: Mapping[str, Mapping[str, Any]] = outputs if ref.kind == "output" else metrics
    produced = source.get(ref.step)
    if produced is None:
        raise InvalidArgument(f"reference {ref}: step {ref.step!r} has produced no {ref.kind}s (yet)")
    if ref.name not in produced:
        raise InvalidArgument(
            f"reference {ref}: step {ref.step!r} has no {ref.kind} {ref.name!r} (it has: {_names(produced)})"
        )
    return produced[ref.name]


def _names(mapping: Mapping[str, Any]) -> str:
    return ", ".join(sorted(mapping)) or "none"


def substitute(value: Any, resolve: Any) -> Any:
    """``value`` with each ``{{ ref }}`` replaced by ``resolve(ref)``; refs it returns None for stay."""
    if isinstance(value, str):
        whole = REF_RE.fullmatch(value.strip())
        if whole is not None:
            found = resolve(parse_ref(whole.group(1)))
            return value if found is None else found

        def replace(match: re.Match[str]) -> str:
            found = resolve(parse_ref(match.group(1)))
            return match.group(0) if found is None else _text(found)

        return REF_RE.sub(replace, value)
    if isinstance(value, Mapping):
        return {key: substitute(item, resolve) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [substitute(item, resolve) for item in value]
    return value


def substitute_parameters(value: Any, parameters: Mapping[str, Any]) -> Any:
    """Parameters replaced; step references left for the run to resolve."""

    def resolve(ref: Ref) -> Any:
        return lookup(ref, {}, {}, parameters) if ref.kind == "parameter" else None

    return substitute(value, resolve)


def resolve_refs(value: Any, outputs: Outputs, metrics: Metrics, parameters: Mapping[str, Any]) -> Any:
    """Every reference in the strings of ``value`` (recursively in dicts and lists) replaced by its value."""
    return substitute(value, lambda ref: lookup(ref, outputs, metrics, parameters))


# ---- conditions ---------------------------------------------------------------------------------------

_COMPARE_OPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn)


def _operand(node: ast.expr) -> Ref | None:
    """The reference an operand node spells, or None when it spells none."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "parameters":
        return Ref("parameter", node.attr)
    step: str | None = None
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
        step = _step_name(node.value.value)
        if step is not None and node.value.attr == "outputs":
            return Ref("output", node.attr, step)
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "metrics":
        step = _step_name(node.value.value)
        key = node.slice
        if step is not None and isinstance(key, ast.Constant) and isinstance(key.value, str):
            return Ref("metric", key.value, step)
    return None


def _step_name(node: ast.expr) -> str | None:
    """``steps.S`` or ``steps['S']`` -> S."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "steps":
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "steps":
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return key.value
    return None


def _check(node: ast.expr, text: str) -> None:
    def refuse(what: str) -> InvalidArgument:
        return InvalidArgument(
            f"condition {text!r}: {what} is not allowed; use comparisons (== != < <= > >= in), and/or/not, "
            f"constants and {OPERAND_FORMS}"
        )

    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, text)
    elif isinstance(node, ast.UnaryOp):
        negative_number = isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
        if not isinstance(node.op, ast.Not) and not negative_number:
            raise refuse(type(node.op).__name__)
        _check(node.operand, text)
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            if not isinstance(op, _COMPARE_OPS):
                raise refuse(type(op).__name__)
        for operand in (node.left, *node.comparators):
            _check(operand, text)
    elif isinstance(node, ast.List | ast.Tuple | ast.Set):
        for element in node.elts:
            if not isinstance(element, ast.Constant | ast.UnaryOp):
                raise refuse(f"{type(element).__name__} inside a list")
            _check(element, text)
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, bool | int | float | str):
            raise refuse(f"the constant {node.value!r}")
    elif isinstance(node, ast.Attribute | ast.Subscript | ast.Name):
        if _operand(node) is None:
            raise refuse(f"{type(node).__name__} {ast.unparse(node)!r}")
    else:
        raise refuse(type(node).__name__)


@lru_cache(maxsize=512)
def parse_condition(expression: str) -> ast.Expression:
    """The checked syntax tree of a condition; InvalidArgument naming what is not allowed."""
    if "{{" in expression:
        raise InvalidArgument(f"condition {expression!r}: write the expression without {{{{ }}}}, like {OPERAND_FORMS}")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise InvalidArgument(f"condition {expression!r} is not a valid expression: {exc.msg}") from None
    _check(tree.body, expression)
    return tree


def condition_refs(expression: str) -> list[Ref]:
    """The references a condition reads, in order of appearance."""
    found: list[Ref] = []

    def visit(node: ast.AST) -> None:
        ref = _operand(node) if isinstance(node, ast.expr) else None
        if ref is None:
            for child in ast.iter_child_nodes(node):
                visit(child)
        elif ref not in found:
            found.append(ref)

    visit(parse_condition(expression))
    return found


class _Evaluator:
    def __init__(self, outputs: Outputs, metrics: Metrics, parameters: Mapping[str, Any], where: str) -> None:
        self.outputs, self.metrics, self.parameters, self.where = outputs, metrics, parameters, where

    def value(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                return all(self.value(v) for v in node.values)
            return any(self.value(v) for v in node.values)
        if isinstance(node, ast.UnaryOp):
            operand = self.value(node.operand)
            return (not operand) if isinstance(node.op, ast.Not) else -operand
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            return [self.value(e) for e in node.elts]
        if isinstance(node, ast.Compare):
            return self.compare(node)
        ref = _operand(node)
        assert ref is not None, "parse_condition let an unknown node through"
        return self.lookup(ref)

    def lookup(self, ref: Ref) -> Any:
        if ref.kind == "metric":
            assert ref.step is not None
            if not any(ref.name in produced for produced in self.metrics.values()):
                has = self.metrics.get(ref.step) or {}
                raise InvalidArgument(
                    f"{self.where}: no step produced metric {ref.name!r} (step {ref.step!r} has: {_names(has)})"
                )
        try:
            return lookup(ref, self.outputs, self.metrics, self.parameters)
        except InvalidArgument as exc:
            raise InvalidArgument(f"{self.where}: {exc.message}") from None

    def compare(self, node: ast.Compare) -> bool:
        left = self.value(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.value(comparator)
            try:
                ok = _apply(op, left, right)
            except TypeError:
                raise InvalidArgument(
                    f"{self.where}: cannot compare {left!r} with {right!r} using {ast.unparse(node)!r}"
                ) from None
            if not ok:
                return False
            left = right
        return True


def _apply(op: ast.cmpop, left: Any, right: Any) -> bool:
    if isinstance(op, ast.Eq):
        return bool(left == right)
    if isinstance(op, ast.NotEq):
        return bool(left != right)
    if isinstance(op, ast.Lt):
        return bool(left < right)
    if isinstance(op, ast.LtE):
        return bool(left <= right)
    if isinstance(op, ast.Gt):
        return bool(left > right)
    if isinstance(op, ast.GtE):
        return bool(left >= right)
    if isinstance(op, ast.In):
        return left in right
    return left not in right


def evaluate_condition(
    expression: str, outputs: Outputs, metrics: Metrics, parameters: Mapping[str, Any], *, step: str | None = None
) -> bool:
    """The truth of a condition over the run's outputs, metrics and parameters. ``step`` (the condition
    step's name) leads every error message."""
    where = f"condition of step {step!r}" if step else f"condition {expression!r}"
    tree = parse_condition(expression)
    return bool(_Evaluator(outputs, metrics, parameters, where).value(tree.body))
