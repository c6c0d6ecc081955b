"""Compile a ``Pipeline`` spec into a checked plan, and decide from step states what runs next.

Everything here is pure: a plan in, states in, names out. The reconciler owns time, jobs and storage.

Skipping: a step behind an untaken branch of a condition is skipped, and so is every step downstream of
a skipped (or finally failed) step, because what it waits for will never come. A step gated by several
conditions runs only when each of them took its branch.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from strato.errors import InvalidArgument
from strato.pipelines.refs import Ref, condition_refs, find_refs, substitute_parameters
from strato.specs.pipeline import (
    AnyStep,
    ConditionStep,
    Pipeline,
    ProcessingStep,
    TrainingStep,
    coerce_parameter,
    step_outputs,
)

PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED, CACHED = "Pending", "Running", "Succeeded", "Failed", "Skipped", "Cached"
STATES = (PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED, CACHED)
DONE = frozenset({SUCCEEDED, CACHED, SKIPPED})
# Fields that change how a step runs, not what it computes: changing them keeps its cache hits.
NOT_IN_CACHE_KEY = ("name", "after", "cache", "retry", "timeout")



@dataclass
class PlannedStep:
    name: str
    type: str
    definition: dict[str, Any]  # the step as written, parameters substituted, step references left
    upstream: set[str] = field(default_factory=set)
    gated_by: list[tuple[str, bool]] = field(default_factory=list)  # (condition step, branch it must take)


@dataclass
class Plan:
    pipeline: str
    parameters: dict[str, Any]
    steps: dict[str, PlannedStep]
    order: list[str]  # topological; ties keep the order of the spec
    on_failure: str = "stop"


def compile_pipeline(spec: Pipeline, parameters: Mapping[str, Any] | None = None) -> Plan:
    """Check ``spec`` as a whole with these parameter values and return its plan. InvalidArgument names
    the first problem: a parameter, a reference, a branch or a cycle."""
    values = _parameter_values(spec, dict(parameters or {}))
    steps = {s.name: s for s in spec.steps}
    planned: dict[str, PlannedStep] = {}
    for step in spec.steps:
        upstream = {*_check_after(step, steps), *_check_refs(step, steps, spec)}
        definition = step.model_dump(mode="json", by_alias=True)
        if isinstance(step, TrainingStep | ProcessingStep):
            definition["cache"] = (step.cache or spec.cache).model_dump(mode="json")
        definition = substitute_parameters(definition, values)
        planned[step.name] = PlannedStep(step.name, step.type, definition, upstream)
    for step in spec.steps:
        if isinstance(step, ConditionStep):
            _gate(step, steps, planned)
    order = _topological_order(planned)
    return Plan(spec.name, values, planned, order, spec.on_failure)


def _parameter_values(spec: Pipeline, given: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(spec.parameters))
    if unknown:
        guess = difflib.get_close_matches(unknown[0], list(spec.parameters), n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        known = ", ".join(sorted(spec.parameters)) or "none"
        raise InvalidArgument(f"unknown parameter {unknown[0]!r}{hint}; pipeline {spec.name!r} has: {known}")
    values: dict[str, Any] = {}
    for name, parameter in spec.parameters.items():
        if name not in given:
            if parameter.default is None:
                raise InvalidArgument(f"parameter {name!r} ({parameter.type}) has no default: give it a value")
            values[name] = parameter.default
            continue
        try:
            value = coerce_parameter(parameter.type, given[name])
        except ValueError as exc:
            raise InvalidArgument(f"parameter {name!r} {exc}") from None
        if parameter.allowed is not None and value not in parameter.allowed:
            allowed = ", ".join(repr(v) for v in parameter.allowed)
            raise InvalidArgument(f"parameter {name!r}: {value!r} is not allowed; allowed values: {allowed}")
        values[name] = value
    return values


def _unknown_step(where: str, name: str, steps: Mapping[str, AnyStep]) -> InvalidArgument:
    guess = difflib.get_close_matches(name, list(steps), n=1)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    return InvalidArgument(f"{where} names step {name!r}, which does not exist{hint}")


def _check_after(step: AnyStep, steps: Mapping[str, AnyStep]) -> list[str]:
    for name in step.after:
        if name not in steps:
            raise _unknown_step(f"step {step.name!r}: after", name, steps)
    return list(step.after)


def _check_refs(step: AnyStep, steps: Mapping[str, AnyStep], spec: Pipeline) -> set[str]:
    """The steps ``step`` references, after checking every reference it makes."""
    if isinstance(step, ConditionStep):
        where = f"condition of step {step.name!r}"
        try:
            refs: list[Ref] = condition_refs(step.if_)
        except InvalidArgument as exc:
            raise InvalidArgument(f"step {step.name!r}: {exc.message}") from None
    else:
        where = f"step {step.name!r}"
        try:
            refs = find_refs(step.model_dump(mode="json", by_alias=True, exclude={"name", "type", "after"}))
        except InvalidArgument as exc:
            raise InvalidArgument(f"step {step.name!r}: {exc.message}") from None
    referenced: set[str] = set()
    for ref in refs:
        if ref.kind == "parameter":
            if ref.name not in spec.parameters:
                known = ", ".join(sorted(spec.parameters)) or "none"
                raise InvalidArgument(f"{where}: reference {ref} names no parameter (parameters: {known})")
            continue
        assert ref.step is not None
        target = steps.get(ref.step)
        if target is None:
            raise _unknown_step(f"{where}: reference {ref}", ref.step, steps)
        if ref.kind == "output" and ref.name not in step_outputs(target):
            has = ", ".join(step_outputs(target)) or "none"
            raise InvalidArgument(
                f"{where}: reference {ref}: step {ref.step!r} ({target.type}) has no output {ref.name!r} "
                f"(its outputs: {has})"
            )
        if ref.kind == "metric" and not isinstance(target, TrainingStep | ProcessingStep):
            raise InvalidArgument(
                f"{where}: reference {ref}: no step produces metric {ref.name!r}: step {ref.step!r} is a "
                f"{target.type} step; only training and processing steps report metrics"
            )
        referenced.add(ref.step)
    return referenced


def _gate(condition: ConditionStep, steps: Mapping[str, AnyStep], planned: dict[str, PlannedStep]) -> None:
    for branch, names, label in ((True, condition.then, "then"), (False, condition.else_, "else")):
        for name in names:
            if name not in steps:
                raise _unknown_step(f"step {condition.name!r}: {label}", name, steps)
            planned[name].upstream.add(condition.name)
            planned[name].gated_by.append((condition.name, branch))


def _topological_order(planned: dict[str, PlannedStep]) -> list[str]:
    downstream = _downstream(planned)
    _raise_on_cycle(planned, downstream)
    position = {name: i for i, name in enumerate(planned)}
    waiting = {name: len(step.upstream) for name, step in planned.items()}
    ready = [name for name, count in waiting.items() if count == 0]
    order: list[str] = []
    while ready:
        ready.sort(key=position.__getitem__)
        name = ready.pop(0)
        order.append(name)
        for child in downstream[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    return order


def _downstream(planned: Mapping[str, PlannedStep]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {name: [] for name in planned}
    for name, step in planned.items():
        for parent in step.upstream:
            children[parent].append(name)
    position = {name: i for i, name in enumerate(planned)}
    return {name: sorted(kids, key=position.__getitem__) for name, kids in children.items()}


def _raise_on_cycle(planned: Mapping[str, PlannedStep], downstream: Mapping[str, list[str]]) -> None:
    """Depth-first search; the first cycle found is named in the direction data flows."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        visiting.append(name)
        for child in downstream[name]:
            if child in visiting:
                cycle = visiting[visiting.index(child) :]
                raise InvalidArgument(f"the steps form a cycle: {' -> '.join([*cycle, child])}")
            if child not in done:
                visit(child)
        visiting.pop()
        done.add(name)

    for name in planned:
        if name not in done:
            visit(name)


# ---- what runs next -----------------------------------------------------------------------------------


def _state(states: Mapping[str, str], name: str) -> str:
    return states.get(name, PENDING)


def skipped_steps(plan: Plan, states: Mapping[str, str], branches: Mapping[str, bool]) -> list[str]:
    """Steps not yet finished that can never run now: behind a branch a condition did not take, or
    downstream of a skipped or failed step. In plan order."""
    never: set[str] = set()
    for name in plan.order:
        step = plan.steps[name]
        if _state(states, name) not in (PENDING, SKIPPED):
            continue
        untaken = any(condition in branches and branches[condition] != branch for condition, branch in step.gated_by)
        blocked = any(_state(states, up) in (SKIPPED, FAILED) or up in never for up in step.upstream)
        if untaken or blocked:
            never.add(name)
    return [name for name in plan.order if name in never and _state(states, name) == PENDING]


def ready_steps(plan: Plan, states: Mapping[str, str], branches: Mapping[str, bool]) -> list[str]:
    """Pending steps whose upstream steps are all done (Succeeded, Cached or Skipped) and whose
    conditions took the branch they sit on. In plan order."""
    never = set(skipped_steps(plan, states, branches))
    ready = []
    for name in plan.order:
        step = plan.steps[name]
        if _state(states, name) != PENDING or name in never:
            continue
        if not all(_state(states, up) in DONE for up in step.upstream):
            continue
        if all(branches.get(condition) == branch for condition, branch in step.gated_by):
            ready.append(name)
    return ready


# ---- cache --------------------------------------------------------------------------------------------


def cache_key(step: PlannedStep, resolved_definition: Mapping[str, Any], input_fingerprints: Mapping[str, str]) -> str:
    """sha256 (hex) of what a step computes: its type, its definition with every reference resolved, and
    the fingerprints of its inputs (file hashes, table versions, the code snapshot: the caller's choice of
    names). Key order does not matter; fields in ``NOT_IN_CACHE_KEY`` are left out."""
    definition = {k: v for k, v in resolved_definition.items() if k not in NOT_IN_CACHE_KEY}
    document = {
        "type": step.type,
        "definition": definition,
        "inputs": sorted([str(k), str(v)] for k, v in input_fingerprints.items()),
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
