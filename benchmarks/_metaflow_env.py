"""A separate virtualenv with Metaflow for the pipeline benchmark.

Metaflow is a peer, not a Strato dependency, so it never goes into ``.venv``: it lives in
``benchmarks/.metaflow-venv`` (gitignored), made once with ``python3 -m venv`` and
``pip install metaflow==METAFLOW_VERSION`` (under a minute the first time), and reused after that.

    .venv/bin/python benchmarks/_metaflow_env.py          # make it now (prints the interpreter's path)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

METAFLOW_VERSION = "2.19.39"
VENV = Path(__file__).resolve().parent / ".metaflow-venv"
_MARKER = VENV / f".metaflow-{METAFLOW_VERSION}"  # written only after a complete install


def clean_environ() -> dict[str, str]:
    """This process's environment without its virtualenv (VIRTUAL_ENV, PYTHONPATH), so it does not leak."""
    return {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}


def metaflow_python(base_python: str | None = None) -> Path:
    """The interpreter of the Metaflow virtualenv, made (or remade for another version) when missing."""
    python = VENV / "bin" / "python"
    if _MARKER.exists() and python.exists():
        return python
    base = base_python or shutil.which("python3") or sys.executable
    if VENV.exists():
        shutil.rmtree(VENV)
    print(f"making {VENV} with metaflow=={METAFLOW_VERSION} (once)", file=sys.stderr, flush=True)
    env = clean_environ()
    for command in (
        [base, "-m", "venv", str(VENV)],
        [str(python), "-m", "pip", "install", "--upgrade", "pip"],
        [str(python), "-m", "pip", "install", f"metaflow=={METAFLOW_VERSION}"],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:  # pip is chatty: its output only matters when it failed
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}); output above")
    _MARKER.write_text(METAFLOW_VERSION + "\n")
    return python


if __name__ == "__main__":
    print(metaflow_python())
