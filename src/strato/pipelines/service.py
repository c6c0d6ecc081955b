"""Pipelines and their runs as stored resources. A pipeline is versioned: each change is a revision
(`resource_revisions`), and a run pins the revision current when it starts; compiling at apply refuses a
broken pipeline (cycle, missing reference, bad parameter default) before anything runs."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

from strato.errors import InvalidArgument, NotFound
from strato.pipelines.dag import compile_pipeline
from strato.specs.pipeline import Pipeline
from strato.specs.pipeline_run import PipelineRun
from strato.store.metadata import MetadataStore, ResourceRecord

TERMINAL = ("Succeeded", "Failed", "Stopped")


class PipelineService:
    def __init__(self, store: MetadataStore):
        self.store = store

    def apply(self, spec: Pipeline) -> tuple[ResourceRecord, bool]:
        # Refuses a broken pipeline with its reason; parameters a run must give get a stand-in value here.
        stand_in = {"int": 0, "float": 0.0, "string": "", "bool": False}
        required = {
            name: p.allowed[0] if p.allowed else stand_in[p.type]
            for name, p in spec.parameters.items()
            if p.default is None
        }
        compile_pipeline(spec, required)
        data = spec.model_dump(mode="json")
        try:
            existing = self.store.get(Pipeline.KIND, spec.name)
        except NotFound:
            revision = self.store.add_revision(Pipeline.KIND, spec.name, data, "created")
            record = self.store.create(Pipeline.KIND, spec.name, data, state="Active", reason="Created",
                                       message=f"revision {revision}", status={"revision": revision},
                                       active=False)  # fmt: skip
            return record, True
        if Pipeline.model_validate(existing.spec).model_dump(mode="json") == data:
            return existing, False
        revision = self.store.add_revision(Pipeline.KIND, spec.name, data, "changed")
        return self.store.replace_spec(existing.uid, data, {**existing.status, "revision": revision}), False

    def get(self, name: str) -> ResourceRecord:
        return self.store.get(Pipeline.KIND, name)

    def list(self) -> builtins.list[ResourceRecord]:
        return self.store.list(Pipeline.KIND)

    def delete(self, name: str) -> None:
        self.store.delete(self.get(name).uid)

    def to_api(self, record: ResourceRecord) -> dict[str, Any]:
        return record.view()


class PipelineRunService:
    def __init__(self, store: MetadataStore, wake: Callable[[], None] = lambda: None):
        self.store = store
        self.wake = wake

    def apply(self, spec: PipelineRun) -> tuple[ResourceRecord, bool]:
        try:
            existing = self.store.get(PipelineRun.KIND, spec.name)
        except NotFound:
            existing = None
        if existing is not None:
            if PipelineRun.model_validate(existing.spec).model_dump(mode="json") == spec.model_dump(mode="json"):
                return existing, False
            raise InvalidArgument(f"PipelineRun {spec.name!r} already exists with other settings; choose another name")
        pipeline = Pipeline.model_validate(self.store.get(Pipeline.KIND, spec.pipeline).spec)
        if spec.resume_from:
            if spec.parameters:
                raise InvalidArgument("a resumed run takes the parameters of the run it resumes; leave parameters out")
            earlier = self.store.get(PipelineRun.KIND, spec.resume_from)  # a clear NotFound
            if earlier.state not in ("Failed", "Stopped"):
                raise InvalidArgument(
                    f"resume_from: run {spec.resume_from!r} is {earlier.state}; only a failed or stopped run resumes"
                )
        else:
            compile_pipeline(pipeline, spec.parameters)  # bad parameters are refused here, with the reason
        record = self.store.create(PipelineRun.KIND, spec.name, spec.model_dump(mode="json"), state="Pending",
                                   reason="Created", message="waiting for the reconciler", status={})  # fmt: skip
        self.wake()
        return record, True

    def get(self, name: str) -> ResourceRecord:
        return self.store.get(PipelineRun.KIND, name)

    def list(self) -> builtins.list[ResourceRecord]:
        return self.store.list(PipelineRun.KIND)

    def stop(self, name: str) -> ResourceRecord:
        record = self.get(name)
        if record.state in TERMINAL:
            return record
        record = self.store.set_desired(record.uid, stop=True)
        self.wake()
        return record

    def delete(self, name: str) -> None:
        record = self.get(name)
        if record.state not in TERMINAL and record.state != "Pending":
            raise InvalidArgument(f"PipelineRun {name!r} is {record.state}; stop it first (strato stop pipelinerun)")
        self.store.delete(record.uid)

    def to_api(self, record: ResourceRecord) -> dict[str, Any]:
        return record.view()
