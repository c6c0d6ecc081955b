"""Compiling a pipeline (every whole-graph check, with its message), what runs next, the cache key and
the drawings."""

from __future__ import annotations

import re
from typing import Any

import pytest

from strato.errors import InvalidArgument
from strato.pipelines.dag import Plan, PlannedStep, cache_key, compile_pipeline, ready_steps, skipped_steps
from strato.pipelines.render import levels, render_dag, to_dot
from strato.specs.pipeline import Pipeline

PARAMETERS = {
    "max_leaf_nodes": {"type": "int", "default": 8, "allowed": [4, 8, 16]},
    "threshold": {"type": "float", "default": 0.9},
}


def proc(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "processing", "command": f"python {name}.py", **extra}


def iris_steps() -> list[dict[str, Any]]:
    return [
        proc("prepare", outputs=["data"]),
        {
            "name": "train",
            "type": "training",
            "job": {"code": "./src", "command": "python train.py"},
            "inputs": {"train": "{{ steps.prepare.outputs.data }}"},
            "hyperparameters": {"max_leaf_nodes": "{{ parameters.max_leaf_nodes }}"},
        },
        {
            "name": "gate",
            "type": "condition",
            "if": "steps.train.metrics['validation:accuracy'] >= parameters.threshold",
            "then": ["report"],
            "else": ["stop"],
        },
        proc("report", after=["gate"]),
        {"name": "stop", "type": "fail", "message": "under {{ parameters.threshold }}"},
    ]


def spec(steps: list[dict[str, Any]] | None = None, **fields: Any) -> Pipeline:
    data = {"kind": "Pipeline", "name": "iris-flow", "parameters": PARAMETERS, "steps": steps or iris_steps()}
    return Pipeline.model_validate({**data, **fields})


def compile_error(pipeline: Pipeline, parameters: dict[str, Any] | None = None) -> str:
    with pytest.raises(InvalidArgument) as info:
        compile_pipeline(pipeline, parameters)
    return info.value.message


# ---- compile ------------------------------------------------------------------------------------------


def test_compile_builds_the_graph_in_topological_order() -> None:
    plan = compile_pipeline(spec())
    assert plan.pipeline == "iris-flow" and plan.on_failure == "stop"
    assert plan.order == ["prepare", "train", "gate", "report", "stop"]
    assert plan.parameters == {"max_leaf_nodes": 8, "threshold": 0.9}
    steps = plan.steps
    assert steps["train"].upstream == {"prepare"} and steps["gate"].upstream == {"train"}
    assert steps["report"].upstream == {"gate"} and steps["report"].gated_by == [("gate", True)]
    assert steps["stop"].upstream == {"gate"} and steps["stop"].gated_by == [("gate", False)]
    assert steps["train"].type == "training" and steps["gate"].type == "condition"


def test_definition_has_parameters_substituted_and_step_refs_left() -> None:
    plan = compile_pipeline(spec(cache={"enabled": True, "expire_after": "1d"}), {"max_leaf_nodes": "16"})
    train = plan.steps["train"].definition
    assert train["hyperparameters"] == {"max_leaf_nodes": 16}
    assert train["inputs"] == {"train": "{{ steps.prepare.outputs.data }}"}
    assert train["cache"] == {"enabled": True, "expire_after": 86400.0}  # the pipeline's default, made explicit
    assert plan.steps["stop"].definition["message"] == "under 0.9"
    assert plan.steps["gate"].definition["if"].startswith("steps.train.metrics")


def test_topological_order_keeps_spec_order_among_independent_steps() -> None:
    steps = [proc("z", after=["b"]), proc("b"), proc("a"), proc("m", after=["a", "b"])]
    assert compile_pipeline(spec(steps)).order == ["b", "z", "a", "m"]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [proc("a", after=["c"]), proc("b", after=["a"]), proc("c", after=["b"])],
            "the steps form a cycle: a -> b -> c -> a",
        ),
        ([proc("x"), proc("a", after=["a"])], "the steps form a cycle: a -> a"),
        (
            [
                proc("p", outputs=["o"], inputs={"i": "{{ steps.q.outputs.o }}"}),
                proc("q", outputs=["o"], inputs={"i": "{{ steps.p.outputs.o }}"}),
            ],
            "the steps form a cycle: p -> q -> p",
        ),
    ],
)
def test_cycles_are_named_in_order(steps: list[dict[str, Any]], message: str) -> None:
    assert compile_error(spec(steps)) == message


def test_cycle_through_a_branch_is_named() -> None:
    steps = [{"name": "g", "type": "condition", "if": "parameters.threshold > 1", "then": ["h"]}, proc("h")]
    steps[0]["after"] = ["h"]
    assert compile_error(spec(steps)) == "the steps form a cycle: g -> h -> g"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"max_leaf_nodes": "eight"}, "parameter 'max_leaf_nodes' must be an int, got 'eight' (string)"),
        ({"max_leaf_nodes": 2.5}, "parameter 'max_leaf_nodes' must be an int, got 2.5 (float)"),
        ({"threshold": True}, "parameter 'threshold' must be a float, got True (bool)"),
        ({"max_leaf_nodes": 5}, "parameter 'max_leaf_nodes': 5 is not allowed; allowed values: 4, 8, 16"),
        (
            {"treshold": 0.5},
            "unknown parameter 'treshold' (did you mean 'threshold'?); pipeline 'iris-flow' has: "
            "max_leaf_nodes, threshold",
        ),
    ],
)
def test_bad_parameter_values_are_refused(parameters: dict[str, Any], message: str) -> None:
    assert compile_error(spec(), parameters) == message


def test_a_parameter_without_default_must_be_given() -> None:
    pipeline = spec(parameters={**PARAMETERS, "dataset": {"type": "string"}})
    assert compile_error(pipeline) == "parameter 'dataset' (string) has no default: give it a value"
    assert compile_pipeline(pipeline, {"dataset": "iris"}).parameters["dataset"] == "iris"


def test_given_parameters_override_defaults() -> None:
    plan = compile_pipeline(spec(), {"max_leaf_nodes": 4, "threshold": 1})
    assert plan.parameters == {"max_leaf_nodes": 4, "threshold": 1.0}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: s[1]["inputs"].update(train="{{ steps.prep.outputs.data }}"),
            r"step 'train': reference steps.prep.outputs.data names step 'prep', which does not exist "
            r"\(did you mean 'prepare'\?\)",
        ),
        (
            lambda s: s[1]["inputs"].update(train="{{ steps.prepare.outputs.model }}"),
            r"step 'train': reference steps.prepare.outputs.model: step 'prepare' \(processing\) has no output 'model' "
            r"\(its outputs: data\)",
        ),
        (
            lambda s: s[3].update(command="python report.py {{ steps.gate.outputs.x }}"),
            r"step 'report': reference steps.gate.outputs.x: step 'gate' \(condition\) has no output 'x' "
            r"\(its outputs: none\)",
        ),
        (
            lambda s: s[1]["hyperparameters"].update(depth="{{ parameters.depth }}"),
            r"step 'train': reference parameters.depth names no parameter \(parameters: max_leaf_nodes, threshold\)",
        ),
        (
            lambda s: s[4].update(message="{{ steps.train.model }}"),
            r"step 'stop': reference '\{\{ steps.train.model \}\}' is not understood",
        ),
        (
            lambda s: s[2].update(then=["reprot"]),
            r"step 'gate': then names step 'reprot', which does not exist \(did you mean 'report'\?\)",
        ),
        (lambda s: s[2].update({"else": ["halt"]}), r"step 'gate': else names step 'halt', which does not exist$"),
        (lambda s: s[3].update(after=["gat"]), r"step 'report': after names step 'gat', which does not exist"),
        (
            lambda s: s[2].update({"if": "parameters.treshold > 1"}),
            r"condition of step 'gate': reference parameters.treshold names no parameter",
        ),
        (
            lambda s: s[2].update({"if": "steps.trian.metrics['a'] > 1"}),
            r"condition of step 'gate': reference steps.trian.metrics\['a'\] names step 'trian', which does not exist",
        ),
        (
            lambda s: s[2].update({"if": "steps.stop.metrics['accuracy'] > 1"}),
            r"condition of step 'gate': reference steps.stop.metrics\['accuracy'\]: "
            r"no step produces metric 'accuracy': "
            r"step 'stop' is a fail step; only training and processing steps report metrics",
        ),
        (lambda s: s[2].update({"if": "open('x')"}), r"step 'gate': condition \"open\('x'\)\": Call is not allowed"),
    ],
)
def test_broken_references_name_the_step_and_the_reference(change: Any, message: str) -> None:
    steps = iris_steps()
    change(steps)
    found = compile_error(spec(steps))
    assert re.search(message, found), found


def test_condition_depends_on_the_steps_it_reads() -> None:
    steps = iris_steps()
    steps[2]["if"] = "steps.train.metrics['a'] > 1 and steps.prepare.outputs.data != ''"
    assert compile_pipeline(spec(steps)).steps["gate"].upstream == {"train", "prepare"}


def test_duplicate_step_names_never_reach_the_compiler() -> None:
    with pytest.raises(ValueError, match="step name 'prepare' is used twice"):
        spec([proc("prepare"), proc("prepare")])


# ---- ready and skipped --------------------------------------------------------------------------------

DONE = {"prepare": "Succeeded", "train": "Cached", "gate": "Succeeded"}


def test_first_ready_steps_are_the_roots() -> None:
    plan = compile_pipeline(spec())
    assert ready_steps(plan, {}, {}) == ["prepare"]
    assert ready_steps(plan, {"prepare": "Running"}, {}) == []
    assert ready_steps(plan, {"prepare": "Succeeded"}, {}) == ["train"]
    assert ready_steps(plan, {"prepare": "Cached"}, {}) == ["train"]  # a cache hit counts as done
    assert skipped_steps(plan, {}, {}) == []


def test_a_gated_step_waits_for_its_condition_to_choose() -> None:
    plan = compile_pipeline(spec())
    states = {**DONE, "gate": "Running"}
    assert ready_steps(plan, states, {}) == [] and skipped_steps(plan, states, {}) == []


@pytest.mark.parametrize(("taken", "runs", "skipped"), [(True, "report", "stop"), (False, "stop", "report")])
def test_only_the_taken_branch_runs(taken: bool, runs: str, skipped: str) -> None:
    plan = compile_pipeline(spec())
    assert ready_steps(plan, DONE, {"gate": taken}) == [runs]
    assert skipped_steps(plan, DONE, {"gate": taken}) == [skipped]


def branchy() -> Plan:
    steps = [
        proc("a"),
        {
            "name": "g",
            "type": "condition",
            "if": "parameters.threshold > 1",
            "after": ["a"],
            "then": ["t1"],
            "else": ["e1"],
        },
        proc("t1", outputs=["o"]),
        proc("t2", inputs={"x": "{{ steps.t1.outputs.o }}"}),
        proc("e1"),
        proc("join", after=["t2", "e1"]),
        proc("side", after=["a"]),
    ]
    return compile_pipeline(spec(steps))


def test_skipping_spreads_downstream_and_leaves_independent_branches() -> None:
    plan = branchy()
    states = {"a": "Succeeded", "g": "Succeeded"}
    assert skipped_steps(plan, states, {"g": False}) == ["t1", "t2", "join"]
    assert ready_steps(plan, states, {"g": False}) == ["e1", "side"]
    # Once the runner marks them Skipped, nothing changes: they are no longer pending.
    marked = {**states, "t1": "Skipped", "t2": "Skipped", "join": "Skipped", "e1": "Succeeded"}
    assert skipped_steps(plan, marked, {"g": False}) == []
    assert ready_steps(plan, marked, {"g": False}) == ["side"]


def test_steps_downstream_of_a_failure_can_never_run() -> None:
    plan = branchy()
    states = {"a": "Succeeded", "g": "Succeeded", "t1": "Failed"}
    assert skipped_steps(plan, states, {"g": True}) == ["t2", "e1", "join"]
    assert ready_steps(plan, states, {"g": True}) == ["side"]


def test_a_step_gated_by_two_conditions_needs_both() -> None:
    steps = [
        {"name": "g1", "type": "condition", "if": "parameters.threshold > 1", "then": ["x"]},
        {"name": "g2", "type": "condition", "if": "parameters.threshold > 2", "then": ["x"]},
        proc("x"),
    ]
    plan = compile_pipeline(spec(steps))
    done = {"g1": "Succeeded", "g2": "Succeeded"}
    assert plan.steps["x"].gated_by == [("g1", True), ("g2", True)]
    assert ready_steps(plan, done, {"g1": True, "g2": True}) == ["x"]
    assert ready_steps(plan, done, {"g1": True, "g2": False}) == []
    assert skipped_steps(plan, done, {"g1": True, "g2": False}) == ["x"]


# ---- cache key ----------------------------------------------------------------------------------------

STEP = PlannedStep("train", "training", {}, set(), [])
DEFINITION = {"job": {"command": "python train.py", "resources": {"cpus": 1, "gpus": 0}}, "hyperparameters": {"n": 8}}
FINGERPRINTS = {"train": "sha256:aaa", "code": "sha256:ccc"}


def test_cache_key_is_stable_and_ignores_key_order() -> None:
    key = cache_key(STEP, DEFINITION, FINGERPRINTS)
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert cache_key(STEP, DEFINITION, FINGERPRINTS) == key
    reordered = {
        "hyperparameters": {"n": 8},
        "job": {"resources": {"gpus": 0, "cpus": 1}, "command": "python train.py"},
    }
    assert cache_key(STEP, reordered, dict(reversed(FINGERPRINTS.items()))) == key


@pytest.mark.parametrize(
    ("step", "definition", "fingerprints"),
    [
        (STEP, {**DEFINITION, "hyperparameters": {"n": 16}}, FINGERPRINTS),
        (STEP, {**DEFINITION, "hyperparameters": {"n": 8.0001}}, FINGERPRINTS),
        (STEP, {**DEFINITION, "job": {"command": "python train2.py"}}, FINGERPRINTS),
        (STEP, DEFINITION, {**FINGERPRINTS, "train": "sha256:bbb"}),
        (STEP, DEFINITION, {**FINGERPRINTS, "extra": "sha256:aaa"}),
        (STEP, DEFINITION, {"code": "sha256:ccc"}),
        (PlannedStep("train", "processing", {}, set(), []), DEFINITION, FINGERPRINTS),
    ],
)
def test_any_change_in_what_a_step_computes_changes_its_key(
    step: PlannedStep, definition: dict[str, Any], fingerprints: dict[str, str]
) -> None:
    assert cache_key(step, definition, fingerprints) != cache_key(STEP, DEFINITION, FINGERPRINTS)


def test_how_a_step_runs_does_not_change_its_key() -> None:
    run_settings = {
        "name": "other",
        "after": ["x"],
        "cache": {"enabled": False},
        "retry": {"attempts": 3},
        "timeout": 9,
    }
    assert cache_key(STEP, {**DEFINITION, **run_settings}, FINGERPRINTS) == cache_key(STEP, DEFINITION, FINGERPRINTS)


def test_a_parameter_value_reaches_the_key_through_the_compiled_definition() -> None:
    def key(value: int) -> str:
        planned = compile_pipeline(spec(), {"max_leaf_nodes": value}).steps["train"]
        return cache_key(planned, planned.definition, {})

    assert key(8) == key(8) != key(16)


def test_redefining_a_pipeline_without_changing_a_step_keeps_its_key() -> None:
    def key(pipeline: Pipeline) -> str:
        planned = compile_pipeline(pipeline).steps["train"]
        return cache_key(planned, planned.definition, {})

    extra = [*iris_steps(), proc("another")]
    assert key(spec()) == key(spec(extra)) == key(spec(description="now documented"))


# ---- rendering ----------------------------------------------------------------------------------------


def test_levels_put_each_step_below_everything_it_waits_for() -> None:
    assert levels(branchy()) == [["a"], ["g", "side"], ["t1", "e1"], ["t2"], ["join"]]


def test_render_dag_shows_levels_states_and_branches() -> None:
    plan = compile_pipeline(spec())
    text = render_dag(plan, {"prepare": "Succeeded", "train": "Running"})
    assert text == (
        "pipeline iris-flow\n"
        "1  prepare  processing  Succeeded\n"
        "2  train    training    Running    <- prepare\n"
        "3  gate     condition   Pending    <- train\n"
        "4  report   processing  Pending    <- gate is true\n"
        "   stop     fail        Pending    <- gate is false\n"
    )
    assert "\x1b" not in text


def test_to_dot_draws_states_shapes_and_branch_edges() -> None:
    plan = compile_pipeline(spec())
    dot = to_dot(plan, {"prepare": "Cached", "train": "Failed"})
    assert dot.startswith('digraph "iris-flow" {\n') and dot.endswith("}\n")
    assert '"prepare" [label="prepare\\nprocessing\\nCached", fillcolor=lightcyan];' in dot
    assert '"train" [label="train\\ntraining\\nFailed", fillcolor=lightcoral];' in dot
    assert '"gate" [label="gate\\ncondition\\nPending", fillcolor=white, shape=diamond];' in dot
    assert '"prepare" -> "train";' in dot
    assert '"gate" -> "report" [style=dashed, label=true];' in dot
    assert '"gate" -> "stop" [style=dashed, label=false];' in dot
