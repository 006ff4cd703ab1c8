"""`manage.py serve` (what `make run` ends in): web and worker up, both down on Ctrl-C."""

import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _test_database_url() -> str:
    params = connection.get_connection_params()
    host = params.get("host") or "localhost"
    port = params.get("port") or 5432
    name = connection.settings_dict["NAME"]
    user = params.get("user") or "postgres"
    if host.startswith("/"):  # a socket folder, as the embedded server uses
        return f"postgres://{user}@/{name}?host={host}&port={port}"
    return f"postgres://{user}:{params.get('password', '')}@{host}:{port}/{name}"


def _read_until(proc, marker: str, seconds: float) -> str:
    """Collect the process's output until `marker` appears, it exits, or time runs out."""
    seen, deadline = "", time.monotonic() + seconds
    while marker not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536).decode(errors="replace")
            if not chunk:
                break  # exited
            seen += chunk
    return seen


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status


def test_it_serves_web_and_worker_and_stops_both_on_ctrl_c():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "1", "DATABASE_URL": _test_database_url()},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out = _read_until(proc, "Press Ctrl-C to stop.", seconds=60)
        assert "Handoff is running." in out, out
        assert f"http://127.0.0.1:{port}/accounts/login/" in out
        assert _get(f"http://127.0.0.1:{port}/healthz") == 200
        assert _get(f"http://127.0.0.1:{port}/accounts/login/") == 200
        children = subprocess.run(
            ["pgrep", "-g", str(proc.pid), "-f", "daphne|qcluster"],
            capture_output=True,
            text=True,
        ).stdout.split()
        assert len(children) >= 2, "daphne and the worker both run"
    finally:
        # Ctrl-C in a terminal reaches the whole foreground process group.
        os.killpg(proc.pid, signal.SIGINT)
        rest = _read_until(proc, "Stopped.", seconds=30)
        proc.wait(timeout=30)
    assert proc.returncode == 0, out + rest
    assert "Stopped." in rest
    left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout
    assert left.strip() == "", f"processes left behind: {left}"
