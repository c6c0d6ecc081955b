"""The ``TuningJob`` resource: SageMaker's HyperParameterTuningJob, Vertex AI's HyperparameterTuningJob
and Azure ML's sweep job, in one spec. Every trial is a normal ``TrainingJob`` made from ``template``
plus the trial's hyperparameters.

kind: TuningJob
name: digits-sgd
template:                          # a TrainingJob without kind and name
  code: ./src
  command: python train.py
search_space:
  alpha: {type: float, low: 1.0e-6, high: 1.0e-1, log: true}
  hidden: {type: int, low: 16, high: 256, step: 16}
  loss: {type: categorical, values: [hinge, log_loss]}
objective: {metric: "validation:accuracy", direction: maximize}
strategy: hyperband                # random | grid | bayesian | hyperband
max_trials: 20
max_parallel: 2
max_failed: 3
seed: 7
early_stopping: {min_resource: 1, reduction_factor: 3}   # hyperband only; brackets: 1 (ASHA) or auto
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from strato.specs.base import ResourceSpec, StrictModel
from strato.specs.training_job import JobTemplate

STRATEGIES = ("random", "grid", "bayesian", "hyperband")
PARAMETER_TYPES = ("float", "int", "categorical")
PARAM_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$")
MAX_TRIALS = 1000
MAX_GRID_POINTS = 10_000
# Trials are named <tuning name>-<trial number>; 56 characters leave room for "-999999" within 63.
MAX_NAME_LENGTH = 56
DEFAULT_MAX_TRIALS = 10

Scalar = bool | int | float | str


def _did_you_mean(value: str, known: tuple[str, ...]) -> str:
    guess = difflib.get_close_matches(value.lower(), known, n=1)
    return f" (did you mean {guess[0]!r}?)" if guess else ""


def _number(value: float) -> str:
    return f"{value:g}"


class Parameter(StrictModel):
    """One hyperparameter to search. ``float`` and ``int`` take ``low`` < ``high`` (both included),
    optionally ``log`` (log-uniform; needs low > 0) or ``step`` (a grid of low, low+step, ...);
    ``categorical`` takes ``values``."""

    type: str = Field(description="float, int or categorical")
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = Field(None, gt=0)
    values: list[Scalar] | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in PARAMETER_TYPES:
            raise ValueError(
                f"unknown parameter type {value!r}{_did_you_mean(value, PARAMETER_TYPES)}; "
                "use float, int or categorical"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Parameter:
        if self.type == "categorical":
            self._check_categorical()
        else:
            self._check_range()
        return self

    def _check_categorical(self) -> None:
        if self.low is not None or self.high is not None or self.step is not None or self.log:
            raise ValueError("low, high, step and log are for float and int parameters; a categorical takes values")
        if not self.values:
            raise ValueError("a categorical parameter needs a non-empty list of values, like values: [relu, tanh]")
        seen: set[str] = set()
        for value in self.values:
            key = repr(value)
            if key in seen:
                raise ValueError(f"categorical value {value!r} is listed twice")
            seen.add(key)

    def _check_range(self) -> None:
        kind = self.type
        if self.values is not None:
            raise ValueError(f"values is for categorical parameters; a {kind} takes low and high")
        if self.low is None or self.high is None:
            raise ValueError(f"a {kind} parameter needs low and high, like {{type: {kind}, low: 1, high: 10}}")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError("low and high must be finite numbers")
        if self.low >= self.high:
            raise ValueError(
                f"empty range: low ({_number(self.low)}) must be below high ({_number(self.high)}); "
                "for a fixed value put it in template.hyperparameters instead"
            )
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0 (got low {_number(self.low)}); raise low or drop log")
        if self.log and self.step is not None:
            raise ValueError("step and log cannot be combined; drop one of them")
        if kind == "int":
            for field in ("low", "high", "step"):
                value = getattr(self, field)
                if value is not None and not float(value).is_integer():
                    raise ValueError(f"{field} of an int parameter must be a whole number (got {_number(value)})")
            self.low, self.high = int(self.low), int(self.high)
            if self.step is not None:
                self.step = int(self.step)
        if self.step is not None and self.step > self.high - self.low:
            raise ValueError(
                f"step ({_number(self.step)}) is larger than the range {_number(self.low)}..{_number(self.high)}"
            )

    def grid(self) -> list[Scalar] | None:
        """The values a grid search takes (None when this parameter cannot be gridded)."""
        if self.type == "categorical":
            return list(self.values or [])
        assert self.low is not None and self.high is not None
        if self.type == "int":
            step = int(self.step or 1)
            return list(range(int(self.low), int(self.high) + 1, step))
        if self.step is None:
            return None
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]


class Objective(StrictModel):
    """The metric each trial reports (``strato.runtime.report`` or a metric definition) and whether
    bigger or smaller is better. A trial's objective is the metric's final (last reported) value, as
    SageMaker takes it."""

    metric: str = Field(min_length=1, max_length=255)
    direction: Literal["maximize", "minimize"]

    @field_validator("direction", mode="before")
    @classmethod
    def _direction(cls, value: Any) -> Any:
        if isinstance(value, str):
            lowered = value.lower()
            if lowered in ("max", "maximise"):
                return "maximize"
            if lowered in ("min", "minimise"):
                return "minimize"
            if lowered not in ("maximize", "minimize"):
                raise ValueError(f"direction must be maximize or minimize (got {value!r})")
            return lowered
        return value


class EarlyStopping(StrictModel):
    """Successive halving over the trials' intermediate reports. Resources are counted in report steps
    (epochs, usually): a trial gets ``min_resource`` steps before the first cut, then each rung
    (min_resource x reduction_factor^k steps) keeps the best 1/``reduction_factor`` of the trials that
    reached it. ``brackets: 1`` (the default) is one bracket: asynchronous successive halving (ASHA),
    the better choice for the tens of trials a search usually has; ``brackets: auto`` is Hyperband's
    full set of brackets, from aggressive to none (``max_resource`` bounds them; ``auto`` takes the
    longest trial so far)."""

    min_resource: int = Field(1, ge=1)
    max_resource: int | Literal["auto"] = "auto"
    reduction_factor: int = Field(3, ge=2)
    brackets: Literal[1, "auto"] = 1

    @model_validator(mode="after")
    def _order(self) -> EarlyStopping:
        if isinstance(self.max_resource, int) and self.max_resource <= self.min_resource:
            raise ValueError(f"max_resource ({self.max_resource}) must be above min_resource ({self.min_resource})")
        return self


class TrialTemplate(JobTemplate):
    """A ``TrainingJob`` without ``kind`` and ``name``: each trial is named ``<tuning name>-<number>``."""

    WHERE: ClassVar[str] = "a template"
    NAMED: ClassVar[str] = "trials are TrainingJobs named <tuning name>-<number>"


class TuningJob(ResourceSpec):
    KIND: ClassVar[str] = "TuningJob"
    PLURAL: ClassVar[str] = "tuningjobs"

    kind: str = "TuningJob"
    template: TrialTemplate
    search_space: dict[str, Parameter]
    objective: Objective
    strategy: str = Field("random", description="random, grid, bayesian (TPE) or hyperband")
    max_trials: int | None = Field(
        None, ge=1, le=MAX_TRIALS, description="trials to run in all (default 10; grid: the grid's size)"
    )
    max_parallel: int = Field(1, ge=1, le=100)
    max_failed: int = Field(3, ge=1, description="the tuning job fails once this many trials failed")
    seed: int = Field(0, ge=0, description="seeds the search, so a rerun proposes the same hyperparameters")
    early_stopping: EarlyStopping | None = None

    @field_validator("name")
    @classmethod
    def _short_name(cls, value: str) -> str:
        if len(value) > MAX_NAME_LENGTH:
            raise ValueError(
                f"name {value!r} is {len(value)} characters; a tuning job name has at most {MAX_NAME_LENGTH} "
                "so that its trials (<name>-<number>) stay valid job names"
            )
        return value

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        lowered = value.lower()
        if lowered not in STRATEGIES:
            raise ValueError(
                f"unknown strategy {value!r}{_did_you_mean(value, STRATEGIES)}; use random, grid, bayesian or hyperband"
            )
        return lowered

    @field_validator("search_space")
    @classmethod
    def _names(cls, value: dict[str, Parameter]) -> dict[str, Parameter]:
        if not value:
            raise ValueError("give at least one parameter to search, like {lr: {type: float, low: 0.001, high: 0.1}}")
        for name in value:
            if not PARAM_NAME_RE.match(name):
                raise ValueError(
                    f"parameter name {name!r} is not valid: use letters, digits, '_', '.' or '-', starting with a "
                    "letter or '_' (it is passed to the script as --NAME VALUE)"
                )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TuningJob:
        fixed = sorted(set(self.template.hyperparameters) & set(self.search_space))
        if fixed:
            raise ValueError(
                f"hyperparameter {fixed[0]!r} is both fixed in template.hyperparameters and searched in search_space; "
                "remove it from one of them"
            )
        if self.early_stopping is not None and self.strategy != "hyperband":
            raise ValueError(f"early_stopping applies to strategy hyperband only (strategy is {self.strategy})")
        if self.strategy == "grid":
            size = 1
            for name, parameter in self.search_space.items():
                points = parameter.grid()
                if points is None:
                    raise ValueError(
                        f"search_space.{name}: grid search needs a step for a float parameter (a grid of low, "
                        "low+step, ... high), or use type: categorical with the values to try"
                    )
                size *= len(points)
            if size > MAX_GRID_POINTS:
                raise ValueError(
                    f"the grid has {size} points (more than {MAX_GRID_POINTS}); use larger steps, fewer values, "
                    "or strategy random"
                )
        return self

    @property
    def grid_size(self) -> int | None:
        if self.strategy != "grid":
            return None
        size = 1
        for parameter in self.search_space.values():
            size *= len(parameter.grid() or [])
        return size

    @property
    def trial_budget(self) -> int:
        """How many trials run in all: ``max_trials``, at most the grid's size for a grid search."""
        grid = self.grid_size
        if self.max_trials is None:
            return grid if grid is not None else DEFAULT_MAX_TRIALS
        return min(self.max_trials, grid) if grid is not None else self.max_trials
