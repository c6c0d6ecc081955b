"""On-demand feature expressions: arithmetic over named columns, parsed once and checked at apply.

A small, safe subset of Python expressions (no attribute access, no calls except the functions below),
evaluated with numpy over whole columns, so the same expression serves one online row and a million
offline rows alike. ``where(cond, a, b)`` is the conditional; comparisons and ``&``, ``|``, ``~`` give
booleans.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

FUNCTIONS = ("abs", "sqrt", "log", "log1p", "exp", "minimum", "maximum", "where", "isnull", "clip", "round")
_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.BitAnd, ast.BitOr)
_UNARY = (ast.USub, ast.UAdd, ast.Invert, ast.Not)
_COMPARE = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)
_NODES = (ast.Expression, ast.Name, ast.Load, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Compare)


@lru_cache(maxsize=1024)
def parse_expression(text: str) -> ast.Expression:
    """The checked syntax tree of ``text``; ValueError naming what is not allowed."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"expression {text!r} is not valid: {exc.msg}") from None
    for node in ast.walk(tree):
        allowed = isinstance(node, _NODES + _BINARY + _UNARY + _COMPARE)
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name not in FUNCTIONS or node.keywords:
                raise ValueError(f"expression {text!r}: only these functions may be called: {', '.join(FUNCTIONS)}")
            allowed = True
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float | bool):
            raise ValueError(f"expression {text!r}: only numbers may be constants")
        if not allowed:
            raise ValueError(f"expression {text!r}: {type(node).__name__} is not allowed (use arithmetic)")
    return tree


def expression_names(text: str) -> set[str]:
    """The column names an expression reads."""
    tree = parse_expression(text)
    calls = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in calls}


def evaluate(text: str, columns: Mapping[str, Any]) -> Any:
    """The expression over ``columns`` (numpy arrays or scalars); nulls should arrive as NaN."""
    import numpy as np

    functions = {
        "abs": np.abs,
        "sqrt": np.sqrt,
        "log": np.log,
        "log1p": np.log1p,
        "exp": np.exp,
        "minimum": np.minimum,
        "maximum": np.maximum,
        "where": np.where,
        "isnull": lambda x: np.isnan(np.asarray(x, dtype="float64")),
        "clip": np.clip,
        "round": np.round,
    }
    missing = expression_names(text) - set(columns)
    if missing:
        raise KeyError(sorted(missing)[0])
    code = compile(parse_expression(text), "<expression>", "eval")
    with np.errstate(all="ignore"):  # division by zero gives inf/NaN, as SQL's NULL-ish results would
        return eval(code, {"__builtins__": {}}, {**functions, **columns})
