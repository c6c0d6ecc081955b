"""Metaflow for the pipeline benchmark, in its own virtualenv (``benchmarks/.metaflow-venv``, see
``_peer_venv.py``).

    .venv/bin/python benchmarks/_metaflow_env.py          # make it now (prints the interpreter's path)
"""

from __future__ import annotations

from pathlib import Path

from _peer_venv import clean_environ, peer_python

METAFLOW_VERSION = "2.19.39"
__all__ = ["METAFLOW_VERSION", "clean_environ", "metaflow_python"]


def metaflow_python(base_python: str | None = None) -> Path:
    return peer_python("metaflow", METAFLOW_VERSION, base_python=base_python)


if __name__ == "__main__":
    print(metaflow_python())
