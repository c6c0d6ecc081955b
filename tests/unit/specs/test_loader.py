"""Resource YAML: every mistake is reported with the file, the document and the field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from strato.errors import InvalidArgument
from strato.specs import TrainingJob, load_yaml_file, load_yaml_text, parse_spec

GOOD = "kind: TrainingJob\nname: iris\ncode: ./src\ncommand: python train.py\n"


def test_valid_job_with_units() -> None:
    (spec,) = load_yaml_text(GOOD + "resources: {cpus: 0.5, memory: 2Gi}\nmax_runtime: 1h30m\n")
    assert isinstance(spec, TrainingJob)
    assert spec.resources.memory == 2 * 2**30 and spec.max_runtime == 5400
    assert spec.argv == ["python", "train.py"]


def test_multiple_documents_are_numbered_in_errors() -> None:
    text = GOOD + "---\nkind: TrainingJob\nname: other\n"
    with pytest.raises(InvalidArgument, match=r"job.yaml \(document 2\): .*give either command"):
        load_yaml_text(text, "job.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: TrainingJob\nname: x\n  command: [", r"job.yaml: line 3, column \d+: malformed YAML"),
        (GOOD + "comand: x\n", r"job.yaml: comand: unknown field \(did you mean 'command'\?\)"),
        (GOOD + "resources: {memroy: 1Gi}\n", r"resources.memroy: unknown field \(did you mean 'memory'\?\)"),
        (GOOD + "resources: {cpus: 0}\n", r"resources.cpus: Input should be greater than 0"),
        (GOOD + "resources: {cpus: -2}\n", r"resources.cpus: Input should be greater than 0"),
        (GOOD + "resources: {memory: lots}\n", r"resources.memory: memory 'lots' is not a size"),
        (GOOD + "max_runtime: soon\n", r"max_runtime: duration 'soon' is not understood"),
        (GOOD + "max_runtime: 0s\n", r"max_runtime: a duration must be greater than zero"),
        ("kind: TrainingJob\nname: x\n", r"give either command .* or entrypoint"),
        ("kind: TrainingJob\nname: x\ncommand: a\nentrypoint: m:f\ncode: .\n", r"command or entrypoint, not both"),
        ("kind: TrainingJob\nname: x\nentrypoint: m:f\n", r"entrypoint needs code"),
        ("kind: TrainingJob\nname: x\nentrypoint: train.py\ncode: .\n", r"must look like module:function"),
        ("kind: TrainingJob\nname: my job\ncommand: x\n", r"name: name 'my job' is not valid: use 1-63 letters"),
        ("kind: TrainingJob\nname: naïve\ncommand: x\n", r"name 'naïve' is not valid"),
        ("kind: TrainJob\nname: x\n", r"kind: unknown resource kind 'TrainJob'; did you mean"),
        ("name: x\n", r"kind: required field is missing"),
        ("- a\n- b\n", r"a resource must be a mapping"),
        ("", r"no resource found \(the file is empty\)"),
        (GOOD + "inputs: {'1bad': ./x}\n", r"input channel '1bad' must start with a letter"),
        (GOOD + "environment: {'BAD-NAME': x}\n", r"'BAD-NAME' is not a valid environment variable name"),
        (GOOD + "metric_definitions: [{name: loss, regex: 'loss=[0-9.]+'}]\n", r"needs one capturing group"),
        (GOOD + "metric_definitions: [{name: loss, regex: 'loss=(['}]\n", r"does not compile"),
        (GOOD + "retry: {max_attempts: 0}\n", r"retry.max_attempts: Input should be greater than or equal to 1"),
    ],
)
def test_bad_specs_name_the_field(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as info:
        load_yaml_text(text, "job.yaml")
    assert str(info.value).startswith("job.yaml")
    assert "\n" not in str(info.value)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"nope.yaml: file not found"):
        load_yaml_file(tmp_path / "nope.yaml")
    binary = tmp_path / "job.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidArgument, match="not a UTF-8 text file"):
        load_yaml_file(binary)


def test_unicode_paths_and_values_are_fine(tmp_path: Path) -> None:
    file = tmp_path / "mes tâches" / "job é.yaml"
    file.parent.mkdir()
    file.write_text(GOOD.replace("./src", "./código fuente") + "hyperparameters: {note: 'ü ∑'}\n", encoding="utf-8")
    (spec,) = load_yaml_file(file)
    assert spec.code == "./código fuente" and spec.hyperparameters == {"note": "ü ∑"}


def test_parse_spec_round_trips_model_dump() -> None:
    spec = TrainingJob(name="x", command="python a.py", hyperparameters={"a": 1})
    assert parse_spec(spec.model_dump(mode="json")) == spec
