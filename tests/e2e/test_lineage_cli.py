"""``strato lineage`` as a user runs it: help with examples, and one clear line when a node or a kind is
not known. (A job -> run -> model walk is added once jobs record their lineage.)"""

from __future__ import annotations

from tests.e2e.cli import ControlPlane, base_env, error_line, ok, run_cli


def test_help_shows_usage_options_and_examples() -> None:
    text = ok(run_cli("lineage", "--help", env=base_env(COLUMNS="120"))).stdout
    for fragment in (
        "lineage [OPTIONS]",
        "KIND",
        "NAME",
        "what it came from (upstream) and what came from it (downstream)",
        "--upstream",
        "--downstream",
        "--depth",
        "table|json|dot",
        "Examples:",
        "strato lineage job iris-tree -o dot | dot -Tsvg > lineage.svg",
    ):
        assert fragment in text, f"{fragment!r} not in:\n{text}"


def test_unknown_node_is_one_line(plane: ControlPlane) -> None:
    line = error_line(
        plane.cli("lineage", "job", "NOPE"), "no job named 'NOPE' in the lineage", "(kinds: batch_transform, code"
    )
    assert "job" in line.split("(kinds:")[1]


def test_unknown_kind_is_one_line_with_a_guess(plane: ControlPlane) -> None:
    error_line(plane.cli("lineage", "jbo", "x", "-o", "json"), "unknown lineage kind 'jbo'; did you mean 'job'?")


def test_bad_depth_is_refused_before_any_request(plane: ControlPlane) -> None:
    result = plane.cli("lineage", "job", "x", "--depth", "-1")
    assert result.returncode == 2 and "--depth" in result.stderr, result.stderr
