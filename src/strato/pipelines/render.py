"""A plan with its step states, drawn for a terminal (plain text, level by level) or as Graphviz dot.

Level N holds the steps whose longest chain of upstream steps is N long, so every step sits below all it
waits for. Text carries no colour codes: the CLI may colour the state column, tests read it as is.
"""

from __future__ import annotations

from collections.abc import Mapping

from strato.pipelines.dag import CACHED, FAILED, PENDING, RUNNING, SKIPPED, SUCCEEDED, Plan

DOT_COLOURS = {
    PENDING: "white",
    RUNNING: "lightblue",
    SUCCEEDED: "palegreen",
    CACHED: "lightcyan",
    FAILED: "lightcoral",
    SKIPPED: "lightgrey",
}
DOT_SHAPES = {"condition": "diamond", "fail": "octagon"}


def levels(plan: Plan) -> list[list[str]]:
    """Steps grouped by depth, each level in plan order."""
    depth: dict[str, int] = {}
    for name in plan.order:  # topological, so every upstream step already has its depth
        depth[name] = 1 + max((depth[up] for up in plan.steps[name].upstream), default=-1)
    grouped: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name in plan.order:
        grouped[depth[name]].append(name)
    return grouped


def _waits_for(plan: Plan, name: str) -> str:
    step = plan.steps[name]
    gates = {condition: branch for condition, branch in step.gated_by}
    plain = sorted(up for up in step.upstream if up not in gates)
    parts = [", ".join(plain)] if plain else []
    parts += [f"{condition} is {'true' if branch else 'false'}" for condition, branch in step.gated_by]
    return ("<- " + "; ".join(parts)) if parts else ""


def render_dag(plan: Plan, states: Mapping[str, str]) -> str:
    """One line per step: level, name, type, state and what it waits for, like

    pipeline iris-flow
    1  prepare  processing  Succeeded
    2  train    training    Running    <- prepare
    3  gate     condition   Pending    <- train
    4  report   processing  Pending    <- gate is true
    """
    rows: list[tuple[str, str, str, str, str]] = []
    for number, level in enumerate(levels(plan), start=1):
        for index, name in enumerate(level):
            step = plan.steps[name]
            label = str(number) if index == 0 else ""
            rows.append((label, name, step.type, states.get(name, PENDING), _waits_for(plan, name)))
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(4)]
    lines = [f"pipeline {plan.pipeline}"]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _quote(text: str) -> str:
    return '"' + _escape(text) + '"'


def to_dot(plan: Plan, states: Mapping[str, str]) -> str:
    """Graphviz dot: a box per step filled by state (diamond for conditions), an edge per dependency;
    edges into a branch are dashed and labelled true or false."""
    lines = [f"digraph {_quote(plan.pipeline)} {{", "  rankdir=LR;", '  node [shape=box, style="rounded,filled"];']
    for name in plan.order:
        step = plan.steps[name]
        state = states.get(name, PENDING)
        label = '"' + "\\n".join(_escape(part) for part in (name, step.type, state)) + '"'
        attributes = [
            f"label={label}",
            f"fillcolor={DOT_COLOURS.get(state, 'white')}",
        ]
        if step.type in DOT_SHAPES:
            attributes.append(f"shape={DOT_SHAPES[step.type]}")
        lines.append(f"  {_quote(name)} [{', '.join(attributes)}];")
    for name in plan.order:
        step = plan.steps[name]
        gates = dict(step.gated_by)
        for up in sorted(step.upstream):
            edge = f"  {_quote(up)} -> {_quote(name)}"
            if up in gates:
                edge += f" [style=dashed, label={'true' if gates[up] else 'false'}]"
            lines.append(edge + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"
