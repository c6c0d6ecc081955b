"""Training job states (SageMaker's TrainingJobStatus plus Strato's phases) and why they change."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    PENDING = "Pending"  # stored, waiting for capacity
    STARTING = "Starting"  # task started: fetching code and inputs
    RUNNING = "Running"  # user code runs
    UPLOADING = "Uploading"  # user code ended: outputs go to the artifact store
    INTERRUPTED = "Interrupted"  # a spot notice was delivered: the task ends soon and restarts
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def has_task(self) -> bool:
        return self in (
            JobState.STARTING,
            JobState.RUNNING,
            JobState.UPLOADING,
            JobState.INTERRUPTED,
            JobState.STOPPING,
        )


TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.STOPPED})


class Reason(StrEnum):
    CREATED = "Created"
    WAITING_FOR_RESOURCES = "WaitingForResources"
    TASK_STARTED = "TaskStarted"
    PHASE = "Phase"
    COMPLETED = "Completed"
    ALGORITHM_ERROR = "AlgorithmError"  # user code exited non-zero
    PROCESS_LOST = "ProcessLost"  # the task vanished (machine or control plane restart)
    RETRYING = "Retrying"
    STOP_REQUESTED = "StopRequested"
    MAX_RUNTIME = "MaxRuntimeExceeded"
    MAX_WAIT = "MaxWaitTimeExceeded"
    SPOT_INTERRUPTION = "SpotInterruption"
    MAX_INTERRUPTIONS = "MaxInterruptionsExceeded"
    ADOPTED = "Adopted"
    INTERNAL = "InternalError"
