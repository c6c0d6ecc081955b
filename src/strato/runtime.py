"""What user code may import inside a Strato job. Standard library only, so importing it costs nothing.

from strato import runtime
runtime.report(loss=0.12, step=3)          # recorded as job metrics
ckpt = runtime.checkpoint_dir()            # synced to the artifact store
runtime.on_interruption(save_checkpoint)   # called on SIGTERM (stop, spot notice)
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


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
    """Checkpoints; restored before a restart of the job."""
    return _dir("STRATO_CHECKPOINT_DIR", "checkpoints")


def input_dir(channel: str) -> Path:
    """The local directory of an input channel."""
    value = os.environ.get(f"STRATO_INPUT_{channel.upper().replace('-', '_')}")
    if not value:
        raise KeyError(f"no input channel {channel!r} in this job (channels: {os.environ.get('SM_CHANNELS', '[]')})")
    return Path(value)


def hyperparameters() -> dict[str, Any]:
    return dict(json.loads(os.environ.get("STRATO_HYPERPARAMETERS") or "{}"))


def report(step: int | None = None, **metrics: float) -> None:
    """Record metrics for this job (printed on a marker line that the platform reads from the log)."""
    payload: dict[str, Any] = {k: float(v) for k, v in metrics.items()}
    if step is not None:
        payload["_step"] = int(step)
    sys.stdout.write(f"[strato] metrics {json.dumps(payload)}\n")
    sys.stdout.flush()


def on_interruption(callback: Callable[[], None]) -> None:
    """Call ``callback`` when the platform asks the job to end (stop, max_runtime, spot notice)."""

    def handler(signum: int, frame: object) -> None:
        callback()

    signal.signal(signal.SIGTERM, handler)
