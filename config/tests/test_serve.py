"""`manage.py serve` (what `make run` ends in): web and worker up, both down on Ctrl-C."""

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from config.tests.processes import assert_gone, children_of, environ_of, free_port, read_until

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db(transaction=True)


def _test_database_url() -> str:
    params = connection.get_connection_params()
    host = params.get("host") or "localhost"
    port = params.get("port") or 5432
    name = connection.settings_dict["NAME"]
    user = params.get("user") or "postgres"
    if host.startswith("/"):  # a socket folder, as the embedded server uses
        return f"postgres://{user}@/{name}?host={host}&port={port}"
    return f"postgres://{user}:{params.get('password', '')}@{host}:{port}/{name}"


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status


def test_it_serves_web_and_worker_and_stops_both_on_ctrl_c():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "1", "DATABASE_URL": _test_database_url()},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out = read_until(proc, "Press Ctrl-C to stop.", seconds=60)
        assert "Handoff is running." in out, out
        assert f"http://127.0.0.1:{port}/accounts/login/" in out
        assert _get(f"http://127.0.0.1:{port}/healthz") == 200
        assert _get(f"http://127.0.0.1:{port}/accounts/login/") == 200
        children = children_of(proc.pid)
        assert len(children) == 2, "daphne and the worker both run"
        for pid in children:
            # With SITE_URL unset, snippets and e-mail links name the port it really serves on.
            assert f"SITE_URL=http://127.0.0.1:{port}" in environ_of(pid)
    finally:
        # Ctrl-C in a terminal reaches the whole foreground process group.
        os.killpg(proc.pid, signal.SIGINT)
        rest = read_until(proc, "Stopped.", seconds=30)
        proc.wait(timeout=30)
    assert proc.returncode == 0, out + rest
    assert "Stopped." in rest
    assert_gone(children)
