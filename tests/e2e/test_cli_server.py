"""The control plane's life cycle through the CLI: ``strato up``, ``status``, ``down``, and the API token
a server that listens beyond loopback requires. Each test starts its own control plane in its own home."""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.cli import ControlPlane, base_env, error_line, json_out, ok, run_cli


def test_up_status_down(own_plane: Callable[..., ControlPlane], tmp_path: Path) -> None:
    home = tmp_path / "home"
    plane = own_plane(home)
    env = base_env()  # only --home says which control plane

    status = json_out(run_cli("status", "--home", home, "-o", "json", env=env))
    assert status == {**status, "running": True, "healthy": True, "pid": plane.pid, "url": plane.url,
                      "home": str(home), "jobs": {}}
    table = ok(run_cli("status", "--home", home, env=env)).stdout
    assert f"running at {plane.url} (pid {plane.pid}" in table and "healthy" in table
    assert "jobs: none" in table

    again = json_out(run_cli("up", "--home", home, "--port", "0", "-o", "json", env=env))
    assert isinstance(again, dict)
    assert (again["pid"], again["url"]) == (plane.pid, plane.url)  # one control plane per home
    printed = ok(run_cli("up", "--home", home, env=env)).stdout
    assert f"Strato control plane running at {plane.url} (pid {plane.pid}" in printed

    stopped = ok(run_cli("down", "--home", home, env=env))
    assert f"stopped the control plane (pid {plane.pid})" in stopped.stdout
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{plane.url}/healthz", timeout=10)

    after = run_cli("status", "--home", home, "-o", "json", env=env)
    assert after.returncode == 3, after.stderr
    assert json.loads(after.stdout) == {"running": False, "home": str(home)}
    after_table = run_cli("status", "--home", home, env=env)
    assert after_table.returncode == 3
    assert f"no control plane runs for home {home}" in after_table.stdout
    assert "strato up" in after_table.stdout

    twice = ok(run_cli("down", "--home", home, env=env))
    assert f"no control plane runs for home {home}" in twice.stdout


def test_up_on_a_port_in_use_says_so(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli("up", "--home", home, "--port", str(port))
    error_line(result, f"cannot listen on 127.0.0.1:{port}", "choose another --port")
    assert run_cli("status", "--home", home).returncode == 3


def test_loopback_server_needs_no_token(plane: ControlPlane) -> None:
    response = httpx.get(f"{plane.url}/api/v1/jobs", timeout=30)
    assert response.status_code == 200, response.text


def test_server_beyond_loopback_requires_the_token(own_plane: Callable[..., ControlPlane], tmp_path: Path) -> None:
    home = tmp_path / "home"
    plane = own_plane(home, "--host", "0.0.0.0")
    token_path = home / "token"
    assert stat.S_IMODE(os.stat(token_path).st_mode) == 0o600
    token = token_path.read_text().strip()
    assert token

    anonymous = httpx.get(f"{plane.url}/api/v1/jobs", timeout=30)
    assert anonymous.status_code == 401
    error = anonymous.json()["error"]
    assert error["code"] == "UNAUTHENTICATED"
    assert "requires an API token" in error["message"]
    assert "Authorization: Bearer <token>" in error["message"]
    assert str(token_path) in error["message"]

    wrong = httpx.get(f"{plane.url}/api/v1/jobs", headers={"Authorization": "Bearer wrong"}, timeout=30)
    assert wrong.status_code == 401
    assert "wrong API token" in wrong.json()["error"]["message"]

    allowed = httpx.get(f"{plane.url}/api/v1/jobs", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json() == []

    # The CLI reads the token from the home, so it just works for the user who started the server.
    assert json_out(run_cli("get", "jobs", "-o", "json", env=plane.env)) == []

    ok(run_cli("down", "--home", home, env=plane.env))
    assert run_cli("status", "--home", home, env=plane.env).returncode == 3
