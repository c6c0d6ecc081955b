"""A separate virtualenv for a peer the benchmarks compare against (Feast, Metaflow): peers pin versions
that clash with Strato's, so they never go into ``.venv``. Each lives in ``benchmarks/.<name>-venv``
(gitignored), made once with ``python3 -m venv`` and ``pip install``, and reused after that."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def clean_environ() -> dict[str, str]:
    """This process's environment without its virtualenv (VIRTUAL_ENV, PYTHONPATH), so it does not leak."""
    return {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}


def peer_python(name: str, version: str, *extra: str, base_python: str | None = None) -> Path:
    """The interpreter of ``benchmarks/.<name>-venv`` with ``<name>==<version>`` (and ``extra`` packages),
    made, or remade for another version, when missing."""
    venv = HERE / f".{name}-venv"
    marker = venv / f".{name}-{version}"  # written only after a complete install
    python = venv / "bin" / "python"
    if marker.exists() and python.exists():
        return python
    base = base_python or shutil.which("python3") or sys.executable
    if venv.exists():
        shutil.rmtree(venv)
    print(f"making {venv} with {name}=={version} (once; it may take minutes)", file=sys.stderr, flush=True)
    for command in (
        [base, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "--upgrade", "pip"],
        [str(python), "-m", "pip", "install", f"{name}=={version}", *extra],
    ):
        done = subprocess.run(command, env=clean_environ(), capture_output=True, text=True)
        if done.returncode != 0:  # pip is chatty: its output only matters when it failed
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}); output above")
    marker.write_text(version + "\n")
    return python
