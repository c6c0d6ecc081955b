"""Settings: defaults < config file < environment < flags, with errors that name the source."""

from __future__ import annotations

from pathlib import Path

import pytest

from strato.config import load_settings
from strato.errors import InvalidArgument


def test_defaults_live_in_the_home(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, environ={})
    assert settings.home == tmp_path
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'strato.db'}"
    assert settings.resolved_artifact_url == str(tmp_path / "artifacts")
    assert settings.resolved_lake_url == str(tmp_path / "lake")
    assert settings.resolved_url == "http://127.0.0.1:8700"


def test_home_from_environment_and_flag(tmp_path: Path) -> None:
    assert load_settings(environ={"STRATO_HOME": str(tmp_path / "env")}).home == tmp_path / "env"
    assert (
        load_settings(home=tmp_path / "flag", environ={"STRATO_HOME": str(tmp_path / "env")}).home == tmp_path / "flag"
    )
    assert load_settings(environ={}).home == Path("~/.strato").expanduser()


def test_precedence_file_then_environment_then_flags(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("port: 9000\ntick_interval: 2\nlocal_memory: 1Gi\n")
    settings = load_settings(home=tmp_path, environ={})
    assert (settings.port, settings.tick_interval, settings.local_memory) == (9000, 2.0, 1024**3)
    settings = load_settings(home=tmp_path, environ={"STRATO_PORT": "9100"})
    assert (settings.port, settings.tick_interval) == (9100, 2.0)
    settings = load_settings(home=tmp_path, environ={"STRATO_PORT": "9100"}, port=9200)
    assert settings.port == 9200


def test_explicit_config_file_and_json_options(tmp_path: Path) -> None:
    config = tmp_path / "team.yaml"
    config.write_text("database_url: postgresql+psycopg://db/strato\n")
    settings = load_settings(
        home=tmp_path, environ={"STRATO_CONFIG": str(config), "STRATO_ARTIFACT_OPTIONS": '{"anon": true}'}
    )
    assert settings.database_url == "postgresql+psycopg://db/strato"
    assert settings.artifact_options == {"anon": True}


@pytest.mark.parametrize(
    ("file_text", "environ", "message"),
    [
        ("port: lots\n", {}, r"config file .*config.yaml: port: Input should be a valid integer"),
        ("prot: 1\n", {}, r"config file .*config.yaml: unknown setting 'prot' \(known: .*port"),
        ("port: [1\n", {}, r"config file .*config.yaml is not valid YAML"),
        ("- 1\n", {}, r"must be a mapping of setting: value"),
        ("", {"STRATO_PORT": "99999"}, r"environment variable STRATO_PORT: port: Input should be less than"),
        ("", {"STRATO_LOCAL_MEMORY": "lots"}, r"memory 'lots' is not a size"),
        ("", {"STRATO_ARTIFACT_OPTIONS": "{nope"}, r"STRATO_ARTIFACT_OPTIONS is not valid JSON"),
        ("", {"STRATO_CONFIG": "/nonexistent/strato.yaml"}, r"STRATO_CONFIG points at /nonexistent/strato.yaml"),
    ],
)
def test_bad_settings_name_what_to_fix(tmp_path: Path, file_text: str, environ: dict[str, str], message: str) -> None:
    if file_text:
        (tmp_path / "config.yaml").write_text(file_text)
    with pytest.raises(InvalidArgument, match=message):
        load_settings(home=tmp_path, environ=environ)


def test_bad_flag_is_reported_as_flag(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"flags: tick_interval: Input should be greater than 0"):
        load_settings(home=tmp_path, environ={}, tick_interval=0)
