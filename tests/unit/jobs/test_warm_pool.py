"""Which commands a warm pool can run, what it preloads for them, and which pools jobs share."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from strato.errors import InvalidArgument
from strato.jobs.warm_pool import pool_key, preload_for, script_argv, top_level_imports
from strato.specs import TrainingJob
from strato.specs.loader import parse_spec


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["python", "train.py", "--lr", "0.1"], ["train.py", "--lr", "0.1"]),
        ([sys.executable, "-c", "print(1)"], ["-c", "print(1)"]),
        (["bash", "run.sh"], None),  # not Python
        (["python", "-m", "pkg.train"], None),  # a module run: left to a cold start
        (["/opt/other/python", "train.py"], None),  # another interpreter than the pool's
        (["python"], None),
    ],
)
def test_only_python_scripts_of_this_interpreter_run_warm(argv: list[str], expected: list[str] | None) -> None:
    assert script_argv(argv) == expected


def test_preload_is_the_scripts_top_level_imports_without_its_own_modules(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "train.py").write_text(
        "from __future__ import annotations\nimport os, numpy as np\nfrom sklearn.neural_network import MLPClassifier\n"
        "import helpers\nfrom pkg import thing\nfrom . import sibling\nfrom strato import runtime\nimport os\n"
        "def main():\n    import torch  # not at the top: left to the script\n"
    )
    assert preload_for(["train.py"], tmp_path) == ["os", "numpy", "sklearn.neural_network"]
    assert preload_for(["missing.py"], tmp_path) == []
    assert top_level_imports("def broken(:\n", set()) == []


def test_jobs_share_a_pool_unless_their_imports_or_import_time_environment_differ() -> None:
    base = {"PATH": "/usr/bin", "OMP_NUM_THREADS": "1", "STRATO_JOB_NAME": "a", "SM_HPS": "{}", "RANK": "0"}
    other_job = {**base, "STRATO_JOB_NAME": "b", "SM_HPS": '{"lr": 1}', "RANK": "1", "MLFLOW_RUN_ID": "r"}
    assert pool_key(["numpy"], base) == pool_key(["numpy"], other_job)
    assert pool_key(["numpy"], base) != pool_key(["numpy", "sklearn"], base)
    assert pool_key(["numpy"], base) != pool_key(["numpy"], {**base, "OMP_NUM_THREADS": "2"})


def test_warm_pool_spec_accepts_true_and_bounds_keep_alive() -> None:
    job = TrainingJob(name="t", command="python train.py", warm_pool=True)
    assert job.warm_pool is not None and job.warm_pool.keep_alive == 120
    assert TrainingJob(name="t", command="python train.py", warm_pool=False).warm_pool is None
    assert TrainingJob(name="t", command="python train.py", warm_pool={"keep_alive": "5m"}).warm_pool.keep_alive == 300
    with pytest.raises(InvalidArgument, match=r"warm_pool\.keep_alive"):
        parse_spec({"kind": "TrainingJob", "name": "t", "command": "python t.py", "warm_pool": {"keep_alive": "2h"}})
