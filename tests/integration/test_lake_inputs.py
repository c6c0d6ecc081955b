"""``lake://TABLE`` as the input of a training job and of a batch transform: pinned to the version current
at submission (later writes do not change what a job or its retries read), recorded in lineage with the
exact version, and refused with a clear message when the table or version does not exist."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from strato.errors import StratoError
from strato.lake.tables import LakeTables
from strato.specs import BatchTransformJob, TrainingJob
from tests.integration.conftest import control_plane

SCRIPT = """
import glob, os
import pandas as pd
files = glob.glob(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "*.parquet"))
print("files", [os.path.basename(f) for f in files])
print("rows", len(pd.read_parquet(files[0])))
"""


def test_job_reads_a_pinned_lake_version_and_lineage_names_it(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "train.py").write_text(SCRIPT)
    with control_plane(tmp_path / "home") as (settings, client):
        lake = LakeTables(settings.resolved_lake_url)
        lake.create("events", pd.DataFrame({"x": [1, 2, 3]}))
        lake.append("events", pd.DataFrame({"x": [4]}))  # version 1: 4 rows
        code = str(tmp_path / "code")
        job = client.jobs.submit(
            TrainingJob(name="reads-lake", code=code, command="python train.py", inputs={"train": "lake://events"})
        )
        assert job.data["spec"]["inputs"] == {"train": "lake://events@1"}
        lake.append("events", pd.DataFrame({"x": [5]}))  # written after submission: not seen by the job
        job.wait(timeout=120)
        logs = "".join(job.logs())
        assert job.status == "Completed", logs
        assert "files ['events.parquet']" in logs and "rows 4" in logs
        graph = client.lineage.get("job", "reads-lake", direction="upstream")
        assert "dataset:lake://events@v1" in {node.id for node in graph.nodes}

        old = client.jobs.submit(
            TrainingJob(name="reads-old", code=code, command="python train.py", inputs={"train": "lake://events@0"})
        )
        old.wait(timeout=120)
        assert "rows 3" in "".join(old.logs())

        for bad, message in (("lake://nope", "no lake table 'nope'"), ("lake://events@9", "has no version 9")):
            with pytest.raises(StratoError, match=message) as info:
                client.jobs.submit(TrainingJob(name="bad", code=code, command="python train.py", inputs={"train": bad}))
            assert info.value.message.startswith("inputs.train: ")


def test_batch_transform_scores_a_lake_table(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    from tests.integration.test_endpoints import COLUMNS, _iris, save_sklearn

    model = save_sklearn(tmp_path / "model", LogisticRegression(max_iter=500))
    with control_plane(tmp_path / "home") as (settings, client):
        x, _ = _iris()
        LakeTables(settings.resolved_lake_url).create("flowers", x[COLUMNS])
        client.batch.submit(BatchTransformJob(name="score", model=str(model), input="lake://flowers"))
        done = client.batch.wait("score", timeout=180)
        assert done["status"]["state"] == "Completed", done["status"]
        assert done["status"]["input_version"] == 0
        assert "scored 150 rows" in done["status"]["message"]
        graph = client.lineage.get("batch", "score", direction="upstream")
        assert "dataset:lake://flowers@v0" in {node.id for node in graph.nodes}
        with pytest.raises(StratoError, match="no lake table 'missing'"):
            client.batch.submit(BatchTransformJob(name="x", model=str(model), input="lake://missing"))
