"""Reads a job's log as it grows: the runner's phase markers, ``strato.runtime.report`` lines and the
user's metric definitions (SageMaker MetricDefinitions: a regex whose first group is the value)."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field

PHASE_RE = re.compile(r"^\[strato\] phase (\w+)(?: at ([0-9.]+))?")
REPORT_PREFIX = "[strato] metrics "
FAILURE_PREFIX = "[strato] failure-reason "


def last_failure_reason(text: str) -> str | None:
    """The last ``[strato] failure-reason "..."`` a task printed, or None."""
    for line in reversed(text.splitlines()):
        if line.startswith(FAILURE_PREFIX):
            try:
                return str(json.loads(line[len(FAILURE_PREFIX) :]))
            except ValueError:
                return line[len(FAILURE_PREFIX) :]
    return None


CHECKPOINT_RE = re.compile(r"^\[strato\] checkpoint saved (v\d+) at ([0-9.]+): save ([0-9.]+)s, upload ([0-9.]+)s")


@dataclass
class ScanResult:
    phases: list[tuple[str, float | None]] = field(default_factory=list)  # (phase, when it began)
    metrics: list[tuple[str, float, int | None]] = field(default_factory=list)  # (name, value, step)
    consumed: int = 0  # bytes of complete lines read
    failure_reason: str | None = None
    checkpoints: list[dict[str, float | str]] = field(default_factory=list)  # version, saved_at, cost


class LogScanner:
    def __init__(self, metric_definitions: list[tuple[str, str]]):
        self._definitions = [(name, re.compile(regex)) for name, regex in metric_definitions]

    def scan(self, data: bytes, *, final: bool = False) -> ScanResult:
        """Scan complete lines of ``data`` (all of it when ``final``); ``consumed`` says how far."""
        result = ScanResult()
        end = len(data) if final else data.rfind(b"\n") + 1
        if end <= 0:
            return result
        result.consumed = end
        for raw in data[:end].splitlines():
            line = raw.decode("utf-8", errors="replace")
            self._scan_line(line, result)
        return result

    def _scan_line(self, line: str, result: ScanResult) -> None:
        if line.startswith("[strato] "):
            phase = PHASE_RE.match(line)
            if phase:
                result.phases.append((phase.group(1), float(phase.group(2)) if phase.group(2) else None))
                return
            if line.startswith(REPORT_PREFIX):
                self._reported(line[len(REPORT_PREFIX) :], result)
                return
            saved = CHECKPOINT_RE.match(line)
            if saved:
                version, at, save, upload = saved.groups()
                result.checkpoints.append(
                    {"version": version, "saved_at": float(at), "cost": float(save) + float(upload)}
                )
                return
            if line.startswith(FAILURE_PREFIX):
                with contextlib.suppress(json.JSONDecodeError):
                    result.failure_reason = str(json.loads(line[len(FAILURE_PREFIX) :]))
                return
        for name, pattern in self._definitions:
            for match in pattern.finditer(line):
                try:
                    result.metrics.append((name, float(match.group(1)), None))
                except (TypeError, ValueError):
                    continue  # a match that is not a number is not a metric value

    @staticmethod
    def _reported(payload: str, result: ScanResult) -> None:
        try:
            data = json.loads(payload)
        except json.JSONDecodeError:
            return
        step = data.pop("_step", None)
        for name, value in data.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                result.metrics.append((str(name), float(value), step if isinstance(step, int) else None))
