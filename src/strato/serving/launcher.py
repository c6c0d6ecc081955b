"""How a replica task starts (``python -m strato.serving.launcher <replica arguments>``): as a fork of
a warm pool process that has already imported Strato's serving code, MLflow and the model's libraries
(by loading the model once), so a replica, from scale-to-zero or after a crash, answers in a fraction
of a second instead of the seconds Python needs to import them. With no pool ready (the first replica
of a model on this machine, or a model not yet in the local cache) it starts the replica in this
process and leaves a pool behind for the next one. Each replica still loads its own copy of the model.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from strato.jobs.warm_pool import WarmRun
from strato.serving.model_files import local_model_dir

REPLICA_MAIN = "import sys; from strato.serving.replica import main; sys.exit(main(sys.argv[1:]))"
PRELOAD = ["strato.serving.replica", "strato.serving.batching", "uvicorn", "uvloop", "httptools"]


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model", required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--warm-keep-alive", type=float, default=0.0, help="0: no warm pool")
    known, _ = parser.parse_known_args(args)
    replica_args = _without(args, "--warm-keep-alive")
    model_dir = local_model_dir(known.model, known.cache)
    if known.warm_keep_alive > 0 and model_dir is not None and (model_dir / "MLmodel").is_file():
        run = WarmRun(
            [sys.executable, "-c", REPLICA_MAIN, *replica_args], Path.cwd(), dict(os.environ), known.warm_keep_alive,
            preload=PRELOAD, warmup=("strato.serving.model:warm_imports", str(model_dir)),
        )  # fmt: skip
        if run.start():
            print(f"[strato] replica started warm (pid {run.pid})", flush=True)
            signal.signal(signal.SIGTERM, lambda signum, _: run.signal(signum))
            signal.signal(signal.SIGINT, lambda signum, _: run.signal(signum))
            code = run.wait()
            return 128 - code if code < 0 else code
    from strato.serving.replica import main as replica

    return replica(replica_args)


def _without(args: list[str], option: str) -> list[str]:
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


if __name__ == "__main__":
    sys.exit(main())
