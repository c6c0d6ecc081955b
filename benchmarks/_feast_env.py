"""A separate virtualenv with Feast for the feature store benchmarks.

Feast pins versions that clash with Strato's (pandas, pyarrow, protobuf, ...), so it never goes into
``.venv``: it lives in ``benchmarks/.feast-venv`` (gitignored), made once with ``python3 -m venv`` and
``pip install feast==FEAST_VERSION`` (a few minutes the first time), and reused after that.

    .venv/bin/python benchmarks/_feast_env.py          # make it now (prints the interpreter's path)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

FEAST_VERSION = "0.67.0"
VENV = Path(__file__).resolve().parent / ".feast-venv"
_MARKER = VENV / f".feast-{FEAST_VERSION}"  # written only after a complete install


def feast_python(base_python: str | None = None) -> Path:
    """The interpreter of the Feast virtualenv, made (or remade for another version) when missing."""
    python = VENV / "bin" / "python"
    if _MARKER.exists() and python.exists():
        return python
    base = base_python or shutil.which("python3") or sys.executable
    if VENV.exists():
        shutil.rmtree(VENV)
    print(f"making {VENV} with feast=={FEAST_VERSION} (a few minutes, once)", file=sys.stderr, flush=True)
    # a clean environment so this script's venv (VIRTUAL_ENV, PYTHONPATH) does not leak into the new one
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    for command in (
        [base, "-m", "venv", str(VENV)],
        [str(python), "-m", "pip", "install", "--upgrade", "pip"],
        [str(python), "-m", "pip", "install", f"feast=={FEAST_VERSION}", "psutil"],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:  # pip is chatty: its output only matters when it failed
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}); output above")
    _MARKER.write_text(FEAST_VERSION + "\n")
    return python


if __name__ == "__main__":
    print(feast_python())
