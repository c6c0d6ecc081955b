"""A small recorded lineage shared by the lineage tests: two datasets and code feed a job, the job is
tracked as a run, the run produced a model version, the model version serves an endpoint; a sibling
job reads the same dataset.

    dataset train ─input_of─▶ job iris ─tracked_as─▶ run r1 ─produced─▶ model_version iris/1 ─deployed_to─▶ endpoint
    dataset test  ─input_of─▶ job iris
    code c0ffee   ─code_of──▶ job iris
    dataset train ─input_of─▶ job other (a sibling: neither up- nor downstream of iris)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from strato.lineage import kinds
from strato.lineage.graph import Lineage, NodeRef
from strato.store.metadata import MetadataStore

TRAIN: NodeRef = (kinds.DATASET, "s3://bucket/train@aaaaaaaaaaaaaaaa")
TEST: NodeRef = (kinds.DATASET, "s3://bucket/test@bbbbbbbbbbbbbbbb")
CODE: NodeRef = (kinds.CODE, "c0ffee")
JOB: NodeRef = (kinds.JOB, "uid-iris-1")
OTHER: NodeRef = (kinds.JOB, "uid-other")
RUN: NodeRef = (kinds.RUN, "run-r1")
MODEL: NodeRef = (kinds.MODEL_VERSION, "iris/1")
ENDPOINT: NodeRef = (kinds.ENDPOINT, "uid-ep")


def ticking_clock(start: float = 1_700_000_000.0) -> Callable[[], float]:
    """A clock that moves one second per reading, so "newest" never ties."""
    counter = itertools.count()
    return lambda: start + next(counter)


def sqlite_store(path: str) -> MetadataStore:
    return MetadataStore(f"sqlite:///{path}", clock=ticking_clock())


def record_pipeline(lineage: Lineage) -> None:
    lineage.node(*TRAIN, name="s3://bucket/train", fingerprint="aaaa")
    lineage.node(*TEST, name="s3://bucket/test")
    lineage.node(*CODE, name="./src")
    lineage.node(*JOB, name="iris", state="Completed")
    lineage.node(*OTHER, name="other")
    lineage.node(*RUN, name="iris-run")
    lineage.node(*MODEL, name="iris/1")
    lineage.node(*ENDPOINT, name="iris-prod")
    lineage.link(TRAIN, JOB, kinds.INPUT_OF)
    lineage.link(TEST, JOB, kinds.INPUT_OF)
    lineage.link(CODE, JOB, kinds.CODE_OF)
    lineage.link(TRAIN, OTHER, kinds.INPUT_OF)
    lineage.link(JOB, RUN, kinds.TRACKED_AS)
    lineage.link(RUN, MODEL, kinds.PRODUCED)
    lineage.link(MODEL, ENDPOINT, kinds.DEPLOYED_TO)


def ids(*refs: NodeRef) -> set[str]:
    return {f"{kind}:{key}" for kind, key in refs}
