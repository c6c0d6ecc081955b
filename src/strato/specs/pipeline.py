"""The ``Pipeline`` resource: SageMaker Pipelines, Vertex (KFP) and Azure ML pipeline jobs in one spec.
A DAG of steps with typed parameters, conditions, a content-hash cache and per-step retries.

kind: Pipeline
name: iris-flow
parameters:
  max_leaf_nodes: {type: int, default: 8, allowed: [4, 8, 16]}
  threshold: {type: float, default: 0.9}
cache: {enabled: true, expire_after: 7d}     # the pipeline's default; a step may set its own `cache:`
on_failure: stop                             # or continue: independent branches go on
steps:
  - {name: prepare, type: processing, code: ./src, command: python prepare.py, outputs: [data]}
  - name: train
    type: training                           # a TrainingJob: any TrainingJob field except name under job:
    job: {code: ./src, command: python train.py}
    inputs: {train: "{{ steps.prepare.outputs.data }}"}
    hyperparameters: {max_leaf_nodes: "{{ parameters.max_leaf_nodes }}"}
  - {name: gate, type: condition, if: "steps.train.metrics['validation:accuracy'] >= parameters.threshold",
     then: [report], else: [stop]}
  - {name: report, type: processing, command: python report.py}
  - {name: stop, type: fail, message: "accuracy is under {{ parameters.threshold }}"}

This module checks each field on its own (names, types, defaults, duplicate step names). What needs the
whole graph (references, cycles, branches) is checked by ``strato.pipelines.dag.compile_pipeline``, which
also parses the ``if:`` expressions: the parser lives with the evaluator in ``strato.pipelines.refs``
and specs sit below pipelines in the layers.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from strato.specs.base import Delay, Duration, Resources, ResourceSpec, StrictModel
from strato.specs.training_job import CHANNEL_RE, ENV_NAME_RE, JobTemplate

# A step runs as a job named <run>-<step>: letters, digits and '-' only, so the suffix is valid in any
# job name, and short enough to leave room for the run's name within 63 characters.
STEP_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$")
STEP_NAME_RULE = "use 1-40 letters, digits or '-', starting with a letter or digit"
# Parameters and outputs are read as attributes in conditions (parameters.P, steps.S.outputs.O) and
# output names are directories under the job's output directory and attributes in conditions: identifiers.
IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
STEP_TYPES = ("processing", "training", "condition", "fail", "register", "deploy", "batch_transform")
PARAMETER_TYPES = ("int", "float", "string", "bool")
TRAINING_OUTPUTS = ("model", "output")

Scalar = bool | int | float | str


def check_step_name(value: str) -> str:
    if not isinstance(value, str) or not STEP_NAME_RE.match(value):
        raise ValueError(f"step name {value!r} is not valid: {STEP_NAME_RULE}")
    return value


def _identifier(value: str, what: str) -> str:
    if not IDENTIFIER_RE.match(value):
        raise ValueError(f"{what} {value!r} is not valid: use letters, digits and '_', starting with a letter or '_'")
    return value


def _type_name(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "string"}.get(type(value), type(value).__name__)


def coerce_parameter(param_type: str, value: Any) -> Scalar:
    """``value`` as a ``param_type``; ValueError when it is not one. Text that spells the type exactly
    ("8", "0.9", "true") is accepted, because values given on a command line or in a URL arrive as text."""
    if param_type == "string":
        if isinstance(value, str):
            return value
    elif param_type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif param_type == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            return int(value)
    elif param_type == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    raise ValueError(
        f"must be {'an' if param_type == 'int' else 'a'} {param_type}, got {value!r} ({_type_name(value)})"
    )


class PipelineParameter(StrictModel):
    """A typed pipeline parameter. Without ``default`` a run must give it a value."""

    type: Literal["int", "float", "string", "bool"]
    default: Scalar | None = None
    allowed: list[Scalar] | None = Field(None, min_length=1, description="the only values a run may give")
    description: str = ""

    @field_validator("type", mode="before")
    @classmethod
    def _known_type(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in PARAMETER_TYPES:
            guess = difflib.get_close_matches(value, PARAMETER_TYPES, n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            raise ValueError(f"unknown parameter type {value!r}{hint}; use int, float, string or bool")
        return value

    @model_validator(mode="after")
    def _values_fit_type(self) -> PipelineParameter:
        if self.allowed is not None:
            try:
                self.allowed = [coerce_parameter(self.type, v) for v in self.allowed]
            except ValueError as exc:
                raise ValueError(f"allowed: every value {exc}") from None
        if self.default is not None:
            try:
                self.default = coerce_parameter(self.type, self.default)
            except ValueError as exc:
                raise ValueError(f"default {exc}") from None
            if self.allowed is not None and self.default not in self.allowed:
                raise ValueError(f"default {self.default!r} is not one of the allowed values {self.allowed}")
        return self


class CachePolicy(StrictModel):
    """Reuse an earlier run's outputs of a step whose cache key matches, while they exist and are younger
    than ``expire_after`` (no limit when unset)."""

    enabled: bool = True
    expire_after: Duration | None = None


FailureKind = Literal["infrastructure", "user"]


def _infrastructure_only() -> list[FailureKind]:
    return ["infrastructure"]


class StepRetry(StrictModel):
    """Run a failed step again: ``attempts`` in all (1: no retry), ``backoff`` apart, for the kinds of
    failure in ``on`` (infrastructure: the machine or process died; user: the code exited non-zero)."""

    attempts: int = Field(1, ge=1, le=100)
    backoff: Delay = 0.0
    on: list[FailureKind] = Field(default_factory=_infrastructure_only, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: Any) -> Any:
        """YAML 1.1 reads an unquoted ``on:`` key as the boolean true; take it as ``on``."""
        if isinstance(data, dict) and True in data:
            data = {("on" if key is True else key): value for key, value in data.items()}
        return data


class _Step(StrictModel):
    name: str
    after: list[str] = Field(default_factory=list, description="steps that must finish first, besides references")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_step_name(value)


class _RunStep(_Step):
    """A step that runs a job: it can be retried, timed out and cached."""

    retry: StepRetry = Field(default_factory=StepRetry)
    timeout: Duration | None = None
    cache: CachePolicy | None = Field(None, description="default: the pipeline's cache")
    inputs: dict[str, str] = Field(default_factory=dict, description="channel -> {{ reference }} or URI")

    @field_validator("inputs")
    @classmethod
    def _channels(cls, value: dict[str, str]) -> dict[str, str]:
        for channel, source in value.items():
            if not CHANNEL_RE.match(channel):
                raise ValueError(f"input channel {channel!r} must start with a letter and use letters, digits, - or _")
            if not source:
                raise ValueError(f"input channel {channel!r} has an empty source")
        return value


class ProcessingStep(_RunStep):
    """A command (or module:function) in a job; each output is a directory it writes under its output
    directory: ``$SM_OUTPUT_DATA_DIR/<name>`` (also ``$STRATO_OUTPUT_DIR/<name>``)."""

    type: Literal["processing"]
    code: str | None = None
    command: str | list[str] | None = None
    entrypoint: str | None = None
    resources: Resources = Field(default_factory=Resources)
    environment: dict[str, str] = Field(default_factory=dict)
    outputs: list[str] = Field(default_factory=list)

    @field_validator("outputs")
    @classmethod
    def _outputs(cls, value: list[str]) -> list[str]:
        for output in value:
            _identifier(output, "output name")
        if len(set(value)) != len(value):
            raise ValueError("outputs lists a name twice")
        return value

    @field_validator("environment")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not ENV_NAME_RE.match(name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
        return {k: str(v) for k, v in value.items()}

    @model_validator(mode="after")
    def _one_way_to_run(self) -> ProcessingStep:
        if bool(self.command) == bool(self.entrypoint):
            raise ValueError("give either command (like 'python prepare.py') or entrypoint (like 'prep:main')")
        if self.entrypoint and not re.match(r"^[\w.]+:\w+$", self.entrypoint):
            raise ValueError(f"entrypoint {self.entrypoint!r} must look like module:function")
        return self


class StepJob(JobTemplate):
    """A ``TrainingJob`` without ``kind`` and ``name``: the step's job is named ``<run>-<step>``."""

    WHERE: ClassVar[str] = "a step's job"
    NAMED: ClassVar[str] = "it runs as a TrainingJob named <run>-<step>"


class TrainingStep(_RunStep):
    """A ``TrainingJob``. ``inputs`` and ``hyperparameters`` are added to the job's own (the step's win);
    its outputs are ``model`` and ``output``, and it reports metrics."""

    type: Literal["training"]
    job: StepJob
    hyperparameters: dict[str, Any] = Field(default_factory=dict)


class ConditionStep(_Step):
    """Evaluates ``if`` over parameters, metrics and outputs; the steps in ``then`` run only when it is
    true, those in ``else`` only when it is false."""

    type: Literal["condition"]
    if_: str = Field(alias="if", min_length=1)
    then: list[str] = Field(default_factory=list)
    else_: list[str] = Field(default_factory=list, alias="else")

    @model_validator(mode="after")
    def _has_branch(self) -> ConditionStep:
        if not self.then and not self.else_:
            raise ValueError("a condition needs then or else: the steps to run when it is true or false")
        both = sorted(set(self.then) & set(self.else_))
        if both:
            raise ValueError(f"step {both[0]!r} is in both then and else; a step can follow one branch only")
        return self


class FailStep(_Step):
    """Ends the run as failed with ``message`` (which may hold references)."""

    type: Literal["fail"]
    message: str = Field(min_length=1)


class RegisterStep(_Step):
    """Registers the model of training step ``step`` as a new version of ``model`` (outputs ``model_uri``
    and ``version``); with ``approve``, approves it against the model's approval policy."""

    type: Literal["register"]
    model: str = Field(min_length=1, description="registered model name")
    step: str = Field(description="the training step whose model is registered")
    approve: bool = False
    description: str = ""

    @model_validator(mode="after")
    def _after_its_step(self) -> RegisterStep:
        if self.step not in self.after:
            self.after = [*self.after, self.step]
        return self


class DeployStep(_Step):
    """Creates or updates an endpoint (any Endpoint fields; references allowed, e.g. a variant's model
    ``{{ steps.register.outputs.model_uri }}``) and waits until it is in service (output ``url``)."""

    type: Literal["deploy"]
    endpoint: dict[str, Any]
    timeout: Duration = 600.0


class BatchTransformStep(_Step):
    """A batch transform job (any BatchTransformJob fields but its name; output ``output``)."""

    type: Literal["batch_transform"]
    transform: dict[str, Any]
    timeout: Duration | None = None


AnyStep = ProcessingStep | TrainingStep | ConditionStep | FailStep | RegisterStep | DeployStep | BatchTransformStep
Step = Annotated[AnyStep, Field(discriminator="type")]


class Pipeline(ResourceSpec):
    KIND: ClassVar[str] = "Pipeline"
    PLURAL: ClassVar[str] = "pipelines"

    kind: str = "Pipeline"
    description: str = ""
    parameters: dict[str, PipelineParameter] = Field(default_factory=dict)
    cache: CachePolicy = Field(default_factory=CachePolicy)
    on_failure: Literal["stop", "continue"] = Field("stop", description="continue: independent branches go on")
    steps: list[Step] = Field(min_length=1)

    @field_validator("parameters")
    @classmethod
    def _parameter_names(cls, value: dict[str, PipelineParameter]) -> dict[str, PipelineParameter]:
        for name in value:
            _identifier(name, "parameter name")
        return value

    @field_validator("steps", mode="before")
    @classmethod
    def _known_types(cls, value: Any) -> Any:
        # Checked before the union so the message names the step and the types that exist.
        if not isinstance(value, list):
            return value
        for index, step in enumerate(value):
            if not isinstance(step, dict):
                continue
            label = f"step {step['name']!r}" if isinstance(step.get("name"), str) else f"step {index + 1}"
            kind = step.get("type")
            if kind is None:
                raise ValueError(f"{label}: type is missing; use one of {', '.join(STEP_TYPES)}")
            if kind not in STEP_TYPES:
                guess = difflib.get_close_matches(str(kind), STEP_TYPES, n=1)
                hint = f" (did you mean {guess[0]!r}?)" if guess else ""
                raise ValueError(f"{label}: unknown type {kind!r}{hint}; known types: {', '.join(STEP_TYPES)}")
        return value

    @model_validator(mode="after")
    def _unique_steps(self) -> Pipeline:
        seen: set[str] = set()
        for step in self.steps:
            if step.name in seen:
                raise ValueError(f"step name {step.name!r} is used twice; each step needs its own name")
            seen.add(step.name)
        return self

    def step(self, name: str) -> AnyStep | None:
        return next((s for s in self.steps if s.name == name), None)


def step_outputs(step: Any) -> tuple[str, ...]:
    """The outputs other steps may reference as ``steps.S.outputs.O``."""
    if isinstance(step, ProcessingStep):
        return tuple(step.outputs)
    if isinstance(step, TrainingStep):
        return TRAINING_OUTPUTS
    if isinstance(step, RegisterStep):
        return ("model_uri", "version")
    if isinstance(step, DeployStep):
        return ("url",)
    if isinstance(step, BatchTransformStep):
        return ("output",)
    return ()
