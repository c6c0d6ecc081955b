"""Resource slots: a backend's capacity minus what its running tasks declared. Not locked itself;
each backend holds its own lock around it together with its other bookkeeping."""

from __future__ import annotations

from strato.compute.base import CapacityUnavailable, TaskResources
from strato.units import format_bytes

EPSILON = 1e-9  # fractional cpus add up with rounding errors


def describe(resources: TaskResources) -> str:
    text = f"{resources.cpus:g} cpu and {format_bytes(resources.memory)}"
    return text + (f" and {resources.gpus} gpu" if resources.gpus else "")


def sum_resources(items: list[TaskResources]) -> TaskResources:
    return TaskResources(
        cpus=sum(r.cpus for r in items), memory=sum(r.memory for r in items), gpus=sum(r.gpus for r in items)
    )


class Slots:
    def __init__(self, capacity: TaskResources):
        self.capacity = capacity
        self._held: dict[str, TaskResources] = {}

    def free(self) -> TaskResources:
        held = list(self._held.values())
        return TaskResources(
            cpus=max(0.0, self.capacity.cpus - sum(r.cpus for r in held)),
            memory=max(0, self.capacity.memory - sum(r.memory for r in held)),
            gpus=max(0, self.capacity.gpus - sum(r.gpus for r in held)),
        )

    def reserve(self, task_id: str, asked: TaskResources) -> None:
        """Hold ``asked`` for ``task_id`` or raise ``CapacityUnavailable`` saying what is free."""
        self.reserve_all([(task_id, asked)])

    def reserve_all(self, items: list[tuple[str, TaskResources]]) -> None:
        """Hold every ``(task_id, resources)`` of a gang, or none of them: ``CapacityUnavailable``
        (saying what the whole gang needs and what is free) when their sum does not fit now."""
        free = self.free()
        total = sum_resources([asked for _, asked in items])
        if total.cpus > free.cpus + EPSILON or total.memory > free.memory or total.gpus > free.gpus:
            need = describe(total)
            if len(items) > 1:
                need = f"{len(items)} tasks at once, {need} in all"
            raise CapacityUnavailable(f"needs {need}; {describe(free)} free of {describe(self.capacity)}")
        for task_id, asked in items:
            self._held[task_id] = asked

    def hold(self, task_id: str, resources: TaskResources) -> None:
        """Hold without checking (a task re-adopted after a restart already runs)."""
        self._held[task_id] = resources

    def release(self, task_id: str) -> TaskResources | None:
        return self._held.pop(task_id, None)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._held
