"""Feast for the feature store benchmarks, in its own virtualenv (``benchmarks/.feast-venv``, see
``_peer_venv.py``).

    .venv/bin/python benchmarks/_feast_env.py          # make it now (prints the interpreter's path)
"""

from __future__ import annotations

from pathlib import Path

from _peer_venv import peer_python

FEAST_VERSION = "0.67.0"


def feast_python(base_python: str | None = None) -> Path:
    return peer_python("feast", FEAST_VERSION, "psutil", base_python=base_python)


if __name__ == "__main__":
    print(feast_python())
