"""Tuning job and trial states, and why they change."""

from __future__ import annotations

from enum import StrEnum


class TuningState(StrEnum):
    PENDING = "Pending"  # stored, no trial started yet
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"  # stop requested: running trials are being stopped
    STOPPED = "Stopped"  # may be resumed

    @property
    def terminal(self) -> bool:
        return self in (TuningState.COMPLETED, TuningState.FAILED, TuningState.STOPPED)


class TrialState(StrEnum):
    PENDING = "Pending"  # its job waits for capacity
    RUNNING = "Running"
    STOPPING = "Stopping"  # its job is being stopped (pruned, or the tuning job stops)
    COMPLETED = "Completed"  # reported the objective
    PRUNED = "Pruned"  # stopped early by hyperband
    FAILED = "Failed"  # its job failed, or it ended without reporting the objective
    STOPPED = "Stopped"  # stopped by a stop of the tuning job (or of its job by hand)

    @property
    def finished(self) -> bool:
        return self in (TrialState.COMPLETED, TrialState.PRUNED, TrialState.FAILED, TrialState.STOPPED)


class Reason(StrEnum):
    CREATED = "Created"
    TRIALS_STARTED = "TrialsStarted"
    COMPLETED = "Completed"
    MAX_FAILED = "MaxFailedTrials"
    OBJECTIVE_MISSING = "ObjectiveMissing"
    NO_RESULT = "NoCompletedTrial"
    STOP_REQUESTED = "StopRequested"
    RESUMED = "Resumed"
