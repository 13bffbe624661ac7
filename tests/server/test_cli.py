"""``ocula serve``, ``ocula keys``, ``ocula jobs`` as the CLI will register them."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import typer
from typer.testing import CliRunner

from ocula.core.services import Service
from ocula.server.cli import is_loopback, jobs_command, keys_app, serve_command

app = typer.Typer()
app.command("serve")(serve_command)
app.add_typer(keys_app, name="keys")
app.command("jobs")(jobs_command)
runner = CliRunner()


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    made = runner.invoke(app, ["keys", "create", "alice", "--data", home])
    assert made.exit_code == 0, made.output
    key = made.stdout.splitlines()[0]
    assert key.startswith("ocula_")
    assert runner.invoke(app, ["keys", "create", "alice", "--data", home]).exit_code == 1
    listed = runner.invoke(app, ["keys", "list", "--data", home])
    assert "alice\tactive" in listed.stdout and key not in listed.stdout
    assert runner.invoke(app, ["keys", "revoke", "alice", "--data", home]).exit_code == 0
    assert "alice\trevoked" in runner.invoke(app, ["keys", "list", "--data", home]).stdout
    assert runner.invoke(app, ["keys", "revoke", "bob", "--data", home]).exit_code == 1


def test_jobs_lists_the_catalogs_jobs(tmp_path: Path) -> None:
    service = Service.open(tmp_path / "home")
    job = service.create_job("append", total_steps=10)
    service.update_job(job["id"], status="Running", completed_steps=4)
    service.close()
    out = runner.invoke(app, ["jobs", "--data", str(tmp_path / "home")])
    assert out.exit_code == 0
    assert job["id"] in out.stdout and "Running\t4/10" in out.stdout
    none = runner.invoke(app, ["jobs", "--data", str(tmp_path / "home"), "--status", "Queued"])
    assert "No jobs." in none.stdout


def test_no_auth_is_refused_off_loopback(tmp_path: Path) -> None:
    out = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--no-auth", "--data",
                              str(tmp_path)])
    assert out.exit_code == 2 and "loopback" in out.output
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")


def test_serve_starts_a_real_server(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = tmp_path / "home"
    key = runner.invoke(app, ["keys", "create", "k", "--data", str(home)]).stdout.split()[0]
    script = ("import typer; from ocula.server.cli import serve_command; "
              "typer.run(serve_command)")
    proc = subprocess.Popen([sys.executable, "-c", script, "--port", str(port), "--data",
                             str(home), "--log-level", "warning"])
    try:
        url = f"http://127.0.0.1:{port}/api/v1"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert httpx.get(f"{url}/datasets").status_code == 401
        assert httpx.get(f"{url}/datasets", auth=(key, "")).json() == []
    finally:
        proc.terminate()
        proc.wait(timeout=30)
