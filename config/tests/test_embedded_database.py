"""The embedded PostgreSQL stops with the last process that uses it, however that process ends.

`make run` under a service manager or a container runtime is stopped with SIGTERM to its whole
process group, and `make test` under `timeout` with SIGTERM; either used to leave the embedded
server running. These tests start real processes on a data folder of their own and signal them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from config.tests.processes import assert_gone, children_of, free_port, read_until

ROOT = Path(__file__).resolve().parents[2]
HOLD = (
    "import os, time, django;"
    "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings');"
    "django.setup();"
    "from django.db import connection; connection.ensure_connection();"
    "print('holding', flush=True); time.sleep(120)"
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A data folder of its own (so its server is not the one the test session uses)."""
    path = tmp_path_factory.mktemp("embedded")
    yield path
    _stop_leftover(path / "postgres")


def _env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    return {**env, "DEBUG": "1", "HANDOFF_DATA_DIR": str(data_dir)}


def _postmaster(pgdata: Path) -> int | None:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def _stopped(pgdata: Path, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _postmaster(pgdata) is None:
            return True
        time.sleep(0.2)
    return False


def _stop_leftover(pgdata: Path) -> None:
    pid = _postmaster(pgdata)
    if pid is not None:  # a failed test must not leave a server behind for the next
        os.kill(pid, signal.SIGQUIT)


def _hold(data_dir: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD],
        cwd=ROOT,
        env=_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out = read_until(proc, "holding", seconds=60)
    assert "holding" in out, out
    return proc


def test_sigterm_to_a_process_using_it_stops_the_embedded_database(data_dir):
    proc = _hold(data_dir)
    assert _postmaster(data_dir / "postgres") is not None
    proc.send_signal(signal.SIGTERM)  # as `timeout` does to `make test`
    proc.wait(timeout=30)
    assert _stopped(data_dir / "postgres"), "the embedded PostgreSQL outlived its only user"


def test_the_last_user_stops_it_even_when_another_was_killed(data_dir):
    first, second = _hold(data_dir), _hold(data_dir)
    first.kill()  # SIGKILL: no exit hook ever runs in it
    first.wait(timeout=10)
    second.send_signal(signal.SIGTERM)
    second.wait(timeout=30)
    assert _stopped(data_dir / "postgres"), "a killed user's stale hold kept the server running"


def test_sigterm_to_make_runs_process_group_stops_web_worker_and_database(data_dir):
    env = _env(data_dir)
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out = read_until(proc, "Press Ctrl-C to stop.", seconds=90)
    assert "Handoff is running." in out, out
    # The web server answers before the worker has finished starting: signal a running product.
    if "] running." not in out:
        out += read_until(proc, "] running.", seconds=90)
    children = children_of(proc.pid)
    assert len(children) == 2, "daphne and the worker both run"
    # A service manager or a container runtime signals the whole group, not just its leader.
    os.killpg(proc.pid, signal.SIGTERM)
    rest = read_until(proc, "Stopped.", seconds=40)
    proc.wait(timeout=30)
    assert "Stopped." in rest, out + rest
    # The worker shut down by itself (finishing its tasks), not killed after a hang.
    assert "has stopped." in rest, rest
    assert_gone(children)
    assert _stopped(data_dir / "postgres"), "the embedded PostgreSQL outlived `make run`"
