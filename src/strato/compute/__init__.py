"""Compute backends: the only code that starts, watches or kills task processes.

``create_backend(settings)`` builds the one named by ``settings.compute`` through ``BACKENDS``, so a
new backend (Ray, a cloud) is one module plus one registry entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from strato._registry import Registry
from strato.compute.base import (
    CapacityUnavailable,
    ComputeBackend,
    LogChunk,
    TaskResources,
    TaskSpec,
    TaskState,
    TaskStatus,
    UsageSample,
)
from strato.compute.fake import FakeBackend
from strato.compute.local import LocalBackend

if TYPE_CHECKING:
    from strato.config import Settings

__all__ = [
    "BACKENDS",
    "CapacityUnavailable",
    "ComputeBackend",
    "FakeBackend",
    "LocalBackend",
    "LogChunk",
    "TaskResources",
    "TaskSpec",
    "TaskState",
    "TaskStatus",
    "UsageSample",
    "create_backend",
]

BACKENDS: Registry[Callable[[Settings], ComputeBackend]] = Registry("compute backend")


@BACKENDS.register("local")
def _local(settings: Settings) -> ComputeBackend:
    return LocalBackend(
        settings.run_dir,
        cpus=settings.local_cpus,
        memory=settings.local_memory,
        log_max_bytes=settings.log_max_bytes,
    )


@BACKENDS.register("fake")
def _fake(settings: Settings) -> ComputeBackend:
    # Sized like the local backend would be when limits are set, so a demo behaves alike.
    default = TaskResources(cpus=4, memory=16 * 1024**3)
    return FakeBackend(
        TaskResources(cpus=settings.local_cpus or default.cpus, memory=settings.local_memory or default.memory)
    )


def create_backend(settings: Settings) -> ComputeBackend:
    """The backend named by ``settings.compute``; an unknown name fails with the known ones."""
    return BACKENDS.get(settings.compute)(settings)
