"""A TuningJob's search space as Optuna distributions, and the grid a grid search walks."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from strato.specs.tuning_job import Parameter

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution


def distribution(parameter: Parameter) -> BaseDistribution:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if parameter.type == "categorical":
        return CategoricalDistribution(list(parameter.values or []))
    assert parameter.low is not None and parameter.high is not None
    if parameter.type == "int":
        step = int(parameter.step or 1)
        return IntDistribution(int(parameter.low), int(parameter.high), log=parameter.log, step=step)
    return FloatDistribution(float(parameter.low), float(parameter.high), log=parameter.log, step=parameter.step)


def distributions(space: dict[str, Parameter]) -> dict[str, BaseDistribution]:
    return {name: distribution(parameter) for name, parameter in space.items()}


def grid(space: dict[str, Parameter]) -> dict[str, list[Any]]:
    """Every value each parameter takes in a grid search (the spec checked that each has a grid)."""
    return {name: list(parameter.grid() or []) for name, parameter in space.items()}


def trial_seed(seed: int, number: int) -> int:
    """The sampler's seed for trial ``number``. A fresh seed per trial (instead of one random stream for
    the whole study) makes the search reproducible across control plane restarts: a restarted control
    plane proposes for trial N exactly what the first one would have."""
    digest = hashlib.sha256(f"strato-tuning:{seed}:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "big")
