"""Settings of a workspace, merged from defaults, a config file, ``STRATO_*`` environment and flags.

Precedence, lowest to highest: defaults < config file < environment < flags. The workspace home
(``--home`` / ``STRATO_HOME``, default ``~/.strato``) holds the metadata database, the artifact store,
the lake, the token and the server's pid and log files unless their URLs point elsewhere. The config
file is ``$STRATO_CONFIG`` or ``<home>/config.yaml``. Nothing here is read at import time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from strato.errors import InvalidArgument
from strato.units import parse_memory

ENV_PREFIX = "STRATO_"
DEFAULT_HOME = "~/.strato"
DEFAULT_PORT = 8700


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in the home")
    artifact_url: str | None = Field(None, description="fsspec URL of the artifact store; default <home>/artifacts")
    artifact_options: dict[str, Any] = Field(default_factory=dict, description="fsspec storage options")
    lake_url: str | None = Field(None, description="root of the lake tables; default <home>/lake")
    online_store_url: str | None = Field(
        None, description="online feature store: sqlite:///PATH (default <home>/online.db) or redis://HOST:PORT/DB"
    )
    cost_target: str = Field(
        "aws:us-east-1:on_demand", description="CLOUD:REGION[:PURCHASE] the cost ledger prices run time at"
    )
    url: str | None = Field(None, description="control plane URL the SDK and CLI talk to")
    token: str | None = Field(None, description="API token; default the one stored in the home")
    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    compute: str = "local"
    local_cpus: float | None = Field(None, gt=0, description="CPUs the local backend may hand out")
    local_memory: int | None = Field(None, gt=0, description="bytes of memory the local backend may hand out")
    tick_interval: float = Field(0.5, gt=0, description="seconds between reconcile passes when nothing wakes them")
    stop_grace: float = Field(10.0, ge=0, description="seconds between SIGTERM and SIGKILL when stopping a task")
    log_max_bytes: int = Field(64 * 1024**2, gt=0, description="log bytes kept per task before the middle is dropped")
    log_level: str = "info"
    tracking: bool = Field(True, description="run a managed MLflow tracking server; every job is an MLflow run")

    @field_validator("home", mode="before")
    @classmethod
    def _expand_home(cls, value: Any) -> Path:
        return Path(os.path.expanduser(str(value))).absolute()

    @field_validator("local_memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> Any:
        return None if value is None else parse_memory(value)

    # Derived locations -------------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'strato.db'}"

    @property
    def resolved_artifact_url(self) -> str:
        return self.artifact_url or str(self.home / "artifacts")

    @property
    def resolved_lake_url(self) -> str:
        return self.lake_url or str(self.home / "lake")

    @property
    def resolved_online_store_url(self) -> str:
        return self.online_store_url or f"sqlite:///{self.home / 'online.db'}"

    @property
    def cost_catalog_dir(self) -> Path:
        """Where ``strato cost catalog update`` writes a refreshed catalog (the shipped one until then)."""
        return self.home / "cost-catalog"

    @property
    def resolved_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return self.url or f"http://{host}:{self.port}"

    @property
    def token_path(self) -> Path:
        return self.home / "token"

    @property
    def run_dir(self) -> Path:
        """Local scratch for tasks of the local backend (work dirs, logs while running)."""
        return self.home / "runs"


def _env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is None or raw == "":
            continue
        if name == "artifact_options":
            try:
                values[name] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InvalidArgument(f"STRATO_ARTIFACT_OPTIONS is not valid JSON: {exc.msg}") from None
        else:
            values[name] = raw
    return values


def _file_values(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidArgument(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidArgument(f"config file {path} must be a mapping of setting: value")
    return data


def _describe(exc: ValidationError, source_of: dict[str, str]) -> str:
    problems = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"])
        top = str(error["loc"][0]) if error["loc"] else ""
        if error["type"] == "extra_forbidden":
            known = ", ".join(sorted(Settings.model_fields))
            problems.append(f"{source_of.get(top, 'settings')}: unknown setting {field!r} (known: {known})")
        else:
            problems.append(f"{source_of.get(top, 'settings')}: {field}: {error['msg']}")
    return "; ".join(problems)


def load_settings(
    *, home: str | Path | None = None, environ: Mapping[str, str] | None = None, **flags: Any
) -> Settings:
    """Build the settings for one workspace. ``flags`` are the highest-precedence values (CLI options)."""
    environ = os.environ if environ is None else environ
    flags = {k: v for k, v in flags.items() if v is not None}
    home_value = home or environ.get("STRATO_HOME") or DEFAULT_HOME
    home_path = Path(os.path.expanduser(str(home_value))).absolute()

    config_path = Path(environ.get("STRATO_CONFIG") or home_path / "config.yaml")
    file_values = _file_values(config_path) if config_path.is_file() else {}
    if environ.get("STRATO_CONFIG") and not config_path.is_file():
        raise InvalidArgument(f"STRATO_CONFIG points at {config_path}, which does not exist")
    env_values = _env_values(environ)

    source_of: dict[str, str] = {}
    merged: dict[str, Any] = {}
    for source, values in (
        (f"config file {config_path}", file_values),
        ("environment", env_values),
        ("flags", flags),
    ):
        for key, value in values.items():
            merged[key] = value
            source_of[key] = source if source != "environment" else f"environment variable {ENV_PREFIX}{key.upper()}"
    merged["home"] = home_path
    try:
        return Settings(**merged)
    except ValidationError as exc:
        raise InvalidArgument(_describe(exc, source_of)) from None
