"""What user code may import inside a Strato job. Standard library only, so importing it costs nothing.

from strato import runtime
runtime.report(step=3, loss=0.12)              # recorded as job metrics
state = runtime.checkpoint_dir()               # synced to the artifact store, restored on restart
runtime.on_interruption(save)                  # called on SIGTERM (stop, spot notice), then exit
if runtime.should_checkpoint():                # the interval advised from cost and interruption rate
    with runtime.checkpoint() as path:         # timed, and synced as soon as the block ends
        save(path)
runtime.interruption_notice()                  # seconds left before a spot kill, or None
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

DEFAULT_INTERVAL = 300.0  # seconds between checkpoints when nothing better is known
DEFAULT_COST = 1.0  # seconds a checkpoint is assumed to take before one is measured
_clock: Callable[[], float] = time.time
_last_checkpoint = _clock()
_costs: list[float] = []
_sequence = 0


def _dir(variable: str, fallback: str) -> Path:
    path = Path(os.environ.get(variable) or fallback)
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_dir() -> Path:
    """Where the model goes; uploaded when the job ends (SageMaker's SM_MODEL_DIR)."""
    return _dir("STRATO_MODEL_DIR", "model")


def output_dir() -> Path:
    """Other outputs (reports, plots); uploaded when the job ends."""
    return _dir("STRATO_OUTPUT_DIR", "output")


def checkpoint_dir() -> Path:
    """Checkpoints: synced to the artifact store while the job runs, restored before a restart."""
    return _dir("STRATO_CHECKPOINT_DIR", "checkpoints")


def input_dir(channel: str) -> Path:
    """The local directory of an input channel."""
    value = os.environ.get(f"STRATO_INPUT_{channel.upper().replace('-', '_')}")
    if not value:
        raise KeyError(f"no input channel {channel!r} in this job (channels: {os.environ.get('SM_CHANNELS', '[]')})")
    return Path(value)


def hyperparameters() -> dict[str, object]:
    return dict(json.loads(os.environ.get("STRATO_HYPERPARAMETERS") or "{}"))


def report(step: int | None = None, **metrics: float) -> None:
    """Record metrics for this job (printed on a marker line that the platform reads from the log)."""
    payload: dict[str, object] = {k: float(v) for k, v in metrics.items()}
    if step is not None:
        payload["_step"] = int(step)
    sys.stdout.write(f"[strato] metrics {json.dumps(payload)}\n")
    sys.stdout.flush()


# Interruptions ----------------------------------------------------------------------------------------
def _control_file(name: str) -> Path | None:
    control = os.environ.get("STRATO_CONTROL_DIR")
    return Path(control) / name if control else None


def interruption_notice() -> float | None:
    """Seconds left before this task is killed by a spot interruption (0 when overdue), or None."""
    path = _control_file("notice.json")
    if path is None or not path.is_file():
        return None
    try:
        deadline = float(json.loads(path.read_text())["deadline"])
    except (OSError, ValueError, KeyError):
        return None
    return max(0.0, deadline - _clock())


def on_interruption(callback: Callable[[], None], *, exit_code: int | None = 143) -> None:
    """Call ``callback`` when the platform asks the job to end (stop, ``max_runtime``, spot notice),
    then exit with ``exit_code`` (143, as a process ended by SIGTERM; None keeps running): a job that
    exits 0 counts as finished, so code that stops early must not."""

    def handler(signum: int, frame: object) -> None:
        callback()
        if exit_code is not None:
            sys.stdout.flush()
            os._exit(exit_code)

    signal.signal(signal.SIGTERM, handler)


# Checkpoint advice ------------------------------------------------------------------------------------
def advised_interval(checkpoint_cost: float, mtbi: float) -> float:
    """Young/Daly: the interval that minimizes expected waste is about sqrt(2 C M), less C when the
    cost is not small against the mean time between interruptions."""
    if checkpoint_cost <= 0:
        return 0.0
    if checkpoint_cost >= mtbi / 2:
        return mtbi
    return math.sqrt(2 * checkpoint_cost * mtbi) - checkpoint_cost


def checkpoint_interval() -> float:
    """Seconds between checkpoints this job should use: Young/Daly from the measured checkpoint cost
    and the interruption rate when the job runs on spot, else ``STRATO_CHECKPOINT_INTERVAL`` or 300."""
    mtbi = float(os.environ.get("STRATO_MTBI_SECONDS") or 0)
    if mtbi > 0:
        known = float(os.environ.get("STRATO_CHECKPOINT_COST") or 0)  # measured by earlier attempts
        cost = sum(_costs) / len(_costs) if _costs else (known or DEFAULT_COST)
        return advised_interval(cost, mtbi)
    return float(os.environ.get("STRATO_CHECKPOINT_INTERVAL") or DEFAULT_INTERVAL)


def should_checkpoint() -> bool:
    """True when a checkpoint is due: the advised interval has passed, or an interruption notice came."""
    return interruption_notice() is not None or _clock() - _last_checkpoint >= checkpoint_interval()


@contextlib.contextmanager
def checkpoint() -> Iterator[Path]:
    """Write a checkpoint inside this block: it is timed (the cost the advice uses) and synced to the
    artifact store as soon as the block ends, as one version that replaces the last only when complete."""
    global _last_checkpoint, _sequence
    started = _clock()
    yield checkpoint_dir()
    ended = _clock()
    _costs.append(ended - started)
    _last_checkpoint, _sequence = ended, _sequence + 1
    path = _control_file("checkpoint.json")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "sequence": _sequence,
                    "saved_at": ended,
                    "save_seconds": ended - started,
                }
            )
        )
        os.replace(tmp, path)
