"""TuningJob specs: every mistake in a search space is refused with the field and what to do."""

from __future__ import annotations

from typing import Any

import pytest

from strato.errors import InvalidArgument
from strato.specs import TuningJob, load_yaml_text, parse_spec

BASE: dict[str, Any] = {
    "kind": "TuningJob",
    "name": "tune",
    "template": {"command": "python train.py"},
    "objective": {"metric": "validation:accuracy", "direction": "maximize"},
    "search_space": {"lr": {"type": "float", "low": 0.001, "high": 0.1}},
}


def refused(**changes: Any) -> str:
    with pytest.raises(InvalidArgument) as info:
        parse_spec({**BASE, **changes}, where="tune.yaml")
    return info.value.message


def space(**parameters: Any) -> dict[str, Any]:
    return {"search_space": parameters}


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"lr": {"type": "float", "low": 0.1, "high": 0.01}},
         "search_space.lr: empty range: low (0.1) must be below high (0.01)"),
        ({"depth": {"type": "int", "low": 4, "high": 4}},
         "search_space.depth: empty range: low (4) must be below high (4)"),
        ({"lr": {"type": "flaot", "low": 0.1, "high": 1}},
         "search_space.lr.type: unknown parameter type 'flaot' (did you mean 'float'?); use float, int or categorical"),
        ({"lr": {"type": "double", "low": 0.1, "high": 1}},
         "search_space.lr.type: unknown parameter type 'double'; use float, int or categorical"),
        ({"lr": {"type": "float", "low": 0, "high": 1, "log": True}},
         "search_space.lr: log scale needs low > 0 (got low 0)"),
        ({"k": {"type": "categorical"}}, "search_space.k: a categorical parameter needs a non-empty list of values"),
        ({"k": {"type": "categorical", "values": []}}, "search_space.k: a categorical parameter needs a non-empty"),
        ({"k": {"type": "categorical", "values": ["a", "a"]}}, "search_space.k: categorical value 'a' is listed twice"),
        ({"k": {"type": "categorical", "values": ["a"], "low": 1}}, "low, high, step and log are for float and int"),
        ({"lr": {"type": "float", "high": 1}}, "search_space.lr: a float parameter needs low and high"),
        ({"lr": {"type": "float", "low": 0.1, "high": 1, "values": [1]}}, "values is for categorical parameters"),
        ({"d": {"type": "int", "low": 1.5, "high": 4}}, "low of an int parameter must be a whole number (got 1.5)"),
        ({"lr": {"type": "float", "low": 0.1, "high": 1, "step": 2}}, "step (2) is larger than the range 0.1..1"),
        ({"lr": {"type": "float", "low": 0.1, "high": 1, "step": 0.1, "log": True}}, "step and log cannot be combined"),
        ({"lr": {"type": "float", "low": 0.1, "high": 1, "hihg": 2}},
         "search_space.lr.hihg: unknown field (did you mean 'high'?)"),
        ({"bad name": {"type": "int", "low": 1, "high": 2}}, "parameter name 'bad name' is not valid"),
        ({}, "search_space: give at least one parameter to search"),
    ],
)
def test_search_space_mistakes_name_the_parameter(parameters: dict[str, Any], expected: str) -> None:
    message = refused(**space(**parameters))
    assert message.startswith("tune.yaml: ")
    assert expected in message


def test_strategy_and_settings_mistakes() -> None:
    assert "strategy: unknown strategy 'hyperbnad' (did you mean 'hyperband'?)" in refused(strategy="hyperbnad")
    assert "early_stopping applies to strategy hyperband only" in refused(early_stopping={"min_resource": 1})
    assert "max_resource (2) must be above min_resource (3)" in refused(
        strategy="hyperband", early_stopping={"min_resource": 3, "max_resource": 2}
    )
    assert "grid search needs a step for a float parameter" in refused(strategy="grid")
    assert "direction must be maximize or minimize (got 'up')" in refused(objective={"metric": "a", "direction": "up"})
    assert "objective.direction: required field is missing" in refused(objective={"metric": "a"})
    assert "max_parallel: Input should be greater than or equal to 1" in refused(max_parallel=0)


def test_template_mistakes_carry_the_template_path() -> None:
    assert "template.commnd: unknown field (did you mean 'command'?)" in refused(template={"commnd": "x"})
    assert "name is not allowed in a template" in refused(template={"name": "x", "command": "y"})
    assert "give either command" in refused(template={})
    assert "hyperparameter 'lr' is both fixed in template.hyperparameters and searched" in refused(
        template={"command": "x", "hyperparameters": {"lr": 0.1}}
    )
    assert "name 'a-very-long" in refused(name="a-very-long-" + "x" * 50)


def test_yaml_numbers_and_defaults() -> None:
    (spec,) = load_yaml_text(
        "kind: TuningJob\nname: t\ntemplate: {command: python train.py}\n"
        "search_space:\n  lr: {type: float, low: 1e-4, high: 1e-1, log: true}\n"
        "  depth: {type: int, low: 2, high: 8}\n  kernel: {type: categorical, values: [linear, 1, true]}\n"
        "objective: {metric: acc, direction: max}\n"
    )
    assert isinstance(spec, TuningJob)
    assert spec.search_space["lr"].low == pytest.approx(1e-4)  # YAML 1.1 reads 1e-4 as a string
    assert spec.search_space["kernel"].values == ["linear", 1, True]
    assert spec.objective.direction == "maximize"
    assert (spec.strategy, spec.trial_budget, spec.max_parallel, spec.max_failed) == ("random", 10, 1, 3)
    dumped = spec.model_dump(mode="json")
    assert "name" not in dumped["template"] and "kind" not in dumped["template"]
    assert TuningJob.model_validate(dumped) == spec  # the stored form reads back


def test_grid_size_caps_the_budget() -> None:
    spec = parse_spec(
        {
            **BASE,
            "strategy": "grid",
            "max_trials": 100,
            "search_space": {
                "lr": {"type": "float", "low": 0.1, "high": 0.3, "step": 0.1},
                "depth": {"type": "int", "low": 2, "high": 6, "step": 2},
                "kernel": {"type": "categorical", "values": ["a", "b"]},
            },
        }
    )
    assert isinstance(spec, TuningJob)
    assert spec.search_space["lr"].grid() == [0.1, 0.2, 0.3]
    assert spec.search_space["depth"].grid() == [2, 4, 6]
    assert spec.grid_size == 18 and spec.trial_budget == 18
