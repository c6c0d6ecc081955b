"""Search strategies by name: which Optuna sampler proposes hyperparameters and which pruner (if any)
stops trials early. ``random`` (RandomSampler), ``grid`` (GridSampler over the grid of the space),
``bayesian`` (TPE, with parallel trials handled by its constant liar) and ``hyperband`` (random
proposals, successive halving over the trials' intermediate reports: one bracket, ASHA, by default
(SuccessiveHalvingPruner); ``early_stopping.brackets: auto`` for Hyperband's brackets (HyperbandPruner)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from strato._registry import Registry
from strato.specs.tuning_job import EarlyStopping, TuningJob
from strato.tuning.space import grid, trial_seed

if TYPE_CHECKING:
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler


@dataclass(frozen=True)
class Strategy:
    name: str
    sampler: Callable[[TuningJob, int], BaseSampler]  # (spec, number of the trial it proposes for)
    pruner: Callable[[TuningJob], BasePruner]
    prunes: bool = False


STRATEGIES: Registry[Strategy] = Registry("tuning strategy")


def _no_pruning(_: TuningJob) -> BasePruner:
    from optuna.pruners import NopPruner

    return NopPruner()


def _random(spec: TuningJob, number: int) -> BaseSampler:
    from optuna.samplers import RandomSampler

    return RandomSampler(seed=trial_seed(spec.seed, number))


def _grid(spec: TuningJob, number: int) -> BaseSampler:
    from optuna.samplers import GridSampler

    class _Grid(GridSampler):
        # GridSampler ends ``optimize`` loops with study.stop() once the grid is used up, which ask/tell
        # does not allow; the reconciler counts the grid's points itself (TuningJob.trial_budget).
        def after_trial(self, *args: object, **kwargs: object) -> None:
            return None

    # One seed for every trial: the seed shuffles the grid's order, which must not change between trials.
    # Which points are left is read from the study, so a restart picks up where it stopped.
    return _Grid(grid(spec.search_space), seed=spec.seed)


def _bayesian(spec: TuningJob, number: int) -> BaseSampler:
    from optuna.samplers import TPESampler

    # TPE models the results once it has a few: a quarter of the budget at random first (2 to 10 trials).
    startup = max(2, min(10, spec.trial_budget // 4))
    return TPESampler(seed=trial_seed(spec.seed, number), n_startup_trials=startup)


def _hyperband(spec: TuningJob) -> BasePruner:
    from optuna.pruners import HyperbandPruner, SuccessiveHalvingPruner

    settings = spec.early_stopping or EarlyStopping()
    if settings.brackets == 1:
        return SuccessiveHalvingPruner(min_resource=settings.min_resource, reduction_factor=settings.reduction_factor)
    return HyperbandPruner(
        min_resource=settings.min_resource,
        max_resource=settings.max_resource,
        reduction_factor=settings.reduction_factor,
    )


STRATEGIES.add("random", Strategy("random", _random, _no_pruning))
STRATEGIES.add("grid", Strategy("grid", _grid, _no_pruning))
STRATEGIES.add("bayesian", Strategy("bayesian", _bayesian, _no_pruning))
STRATEGIES.add("hyperband", Strategy("hyperband", _random, _hyperband, prunes=True))
