"""Base of every resource spec: strict pydantic models that reject unknown fields."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from strato.units import parse_duration, parse_memory

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
NAME_RULE = "use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit"


def check_name(value: str) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ValueError(f"name {value!r} is not valid: {NAME_RULE}")
    return value


def _memory(value: Any) -> int:
    return parse_memory(value)


def _duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    return seconds


def _delay(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds < 0:
        raise ValueError("a delay cannot be negative")
    return seconds


Memory = Annotated[int, BeforeValidator(_memory), Field(gt=0)]
Duration = Annotated[float, BeforeValidator(_duration)]
Delay = Annotated[float, BeforeValidator(_delay)]  # a Duration that may be zero


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Resources(StrictModel):
    """What one task (one instance) needs. Checked against the compute backend's capacity at apply."""

    cpus: float = Field(1.0, gt=0, description="CPU cores")
    memory: Memory = Field(512 * 1024**2, description="bytes; accepts 512Mi, 2Gi, ...")
    gpus: int = Field(0, ge=0)


class ResourceSpec(StrictModel):
    """A named resource. Subclasses set ``KIND`` and add their own fields."""

    KIND: ClassVar[str] = ""
    PLURAL: ClassVar[str] = ""

    kind: str
    name: str
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value != cls.KIND:
            raise ValueError(f"kind must be {cls.KIND!r} for this resource")
        return value
