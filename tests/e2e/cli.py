"""Driving the real ``strato`` CLI in subprocesses, as a user would: run it, check its one-line errors,
start and stop control planes with ``strato up`` / ``strato down``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

CLI = [sys.executable, "-m", "strato.cli.main"]
CLI_TIMEOUT = 180.0  # seconds; generous for a loaded 2-core machine, never what a test relies on
TERMINAL = {"Completed", "Failed", "Stopped"}


def base_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ``STRATO_*`` a developer may have set, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATO_")}
    env["STRATO_TICK_INTERVAL"] = "0.2"
    env.update(extra)
    return env


def run_cli(*args: str | Path, env: dict[str, str] | None = None, cwd: str | Path | None = None,
            timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run ``python -m strato.cli.main ARGS`` and return what it printed and its exit code."""
    return subprocess.run(
        [*CLI, *(str(a) for a in args)], env=env if env is not None else base_env(), cwd=cwd,
        capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=timeout, check=False,
    )


def shown(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """Assert a command succeeded, showing what it printed when it did not."""
    assert result.returncode == 0, shown(result)
    return result


def error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Assert the CLI failed the way the contract says (exit 1, one ``error: ...`` line on stderr)
    and that the line holds every fragment. Returns the line."""
    assert result.returncode == 1, shown(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    line = lines[0]
    assert line.startswith("error: "), line
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def json_out(result: subprocess.CompletedProcess[str]) -> object:
    return json.loads(ok(result).stdout)


def file_uri_path(uri: str) -> Path:
    parsed = urlparse(uri)
    assert parsed.scheme == "file", uri
    return Path(unquote(parsed.path))


@dataclass
class ControlPlane:
    """A running control plane: its home, URL, pid and the environment that points the CLI at it."""

    home: Path
    url: str
    pid: int
    env: dict[str, str] = field(repr=False)

    def cli(self, *args: str | Path, cwd: str | Path | None = None,
            timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=self.env, cwd=cwd, timeout=timeout)

    def job(self, name: str) -> dict:
        data = json_out(self.cli("get", "job", name, "-o", "json"))
        assert isinstance(data, dict)
        return data

    def wait(self, name: str) -> subprocess.CompletedProcess[str]:
        return self.cli("wait", "job", name, "--timeout", "120")


def start_plane(home: Path, *extra_args: str, **env_extra: str) -> ControlPlane:
    env = base_env(STRATO_HOME=str(home), **env_extra)
    info = json_out(run_cli("up", "--home", home, "--port", "0", *extra_args, "-o", "json", env=env))
    assert isinstance(info, dict)
    # STRATO_URL too, so that a control plane that died fails the next command instead of being
    # started again silently in the same home.
    return ControlPlane(home=home, url=info["url"], pid=info["pid"], env={**env, "STRATO_URL": info["url"]})


def stop_plane(plane: ControlPlane) -> None:
    """Stop jobs still running (``down`` leaves them running on purpose), then the control plane.
    Does nothing when none runs (a plain ``get`` would start one)."""
    status = run_cli("status", "--home", plane.home, "-o", "json", env=plane.env)
    if status.returncode != 0:
        return
    url = json.loads(status.stdout)["url"]
    listed = plane.cli("get", "jobs", "--url", url, "-o", "json")
    if listed.returncode == 0:
        for job in json.loads(listed.stdout):
            if job["status"]["state"] not in TERMINAL:
                plane.cli("stop", "job", job["name"], "--url", url)
    ok(run_cli("down", "--home", plane.home, env=plane.env))


# A SageMaker script-mode script: hyperparameters as arguments, paths from SM_* variables.
TRAIN_SCRIPT = """\
import json
import os
import sys

channel = os.environ.get("SM_CHANNEL_TRAIN")
print("ARGS=" + json.dumps(sys.argv[1:]))
print("CHANNEL_FILES=" + json.dumps(sorted(os.listdir(channel)) if channel else None))
print("HPS=" + os.environ.get("SM_HPS", "null"))
print("loss=0.5")
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w") as handle:
    handle.write("trained")
"""


def write_train_script(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "train.py"
    script.write_text(TRAIN_SCRIPT, encoding="utf-8")
    return script


def write_data(directory: Path, name: str = "part-0.csv") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text("x,y\n1,2\n", encoding="utf-8")
    return directory


def printed(log: str, key: str) -> object:
    """The JSON value the training script printed as ``KEY=...``."""
    for line in log.splitlines():
        if line.startswith(f"{key}="):
            return json.loads(line.removeprefix(f"{key}="))
    raise AssertionError(f"the log has no {key}= line:\n{log}")
