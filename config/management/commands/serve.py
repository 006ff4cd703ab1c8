"""Run the web server (daphne: HTTP + WebSocket) and the background worker together.

`make run` ends here. Ctrl-C, SIGTERM or SIGHUP, to this process or to its whole process group
(as a service manager or a container runtime sends it), stops both cleanly, and with them the
embedded PostgreSQL; if either dies, the other is stopped too and the command exits non-zero,
so a half-running product never goes unnoticed.

The children run in process groups of their own and are stopped by this process alone, one
SIGTERM each: a signal sent to every process of django-q2's cluster at once (a group's
SIGTERM reaches its sentinel, pusher, monitor and workers too) leaves its main process hung
in its own shutdown, until it is killed without releasing its hold on the embedded database.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand

from bots.demo_accounts import DEMO_ORG, DEMO_PEOPLE, load_passwords
from bots.models import Organization
from config.env import local_url

PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Command(BaseCommand):
    help = "Start daphne and the django-q2 worker; print the URLs; stop both on Ctrl-C."
    requires_system_checks = []  # the children run the checks; don't pay for them twice

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=settings.PORT)
        parser.add_argument("--host", default=settings.HOST)
        parser.add_argument("--no-worker", action="store_true", help="web server only")

    def handle(self, *args, host, port, no_worker, **options):
        python = sys.executable
        base = local_url(host, port)
        env = dict(os.environ)
        # Links and snippets name the address this server really listens on, unless the public
        # one is set (a proxy in front, a domain name).
        env.setdefault("SITE_URL", base)
        spawn = {"env": env, "process_group": 0, "preexec_fn": _stop_with_parent}
        web = subprocess.Popen(
            [
                python,
                "-m",
                "daphne",
                "-b",
                host,
                "-p",
                str(port),
                "--proxy-headers",
                "config.asgi:application",
            ],
            **spawn,
        )
        children = {"web": web}
        if not no_worker:
            children["worker"] = subprocess.Popen([python, "manage.py", "qcluster"], **spawn)

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, stop)
        announced = False
        exit_code = 0
        while not stopping:
            for name, proc in children.items():
                if proc.poll() is not None:
                    self.stderr.write(f"The {name} process exited with code {proc.returncode}.")
                    exit_code, stopping = proc.returncode or 1, True
            if not announced and not stopping and self._healthy(base):
                self._announce(base)
                announced = True
            time.sleep(0.3)

        self.stdout.write("Stopping…")
        for proc in children.values():
            if proc.poll() is None:
                # SIGTERM, not SIGINT: Twisted (daphne) ignores SIGINT when it was started with
                # SIGINT ignored, as under a background shell job or some process managers.
                proc.terminate()
        deadline = time.monotonic() + 15
        for proc in children.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        # This process holds the embedded database too: leaving now, as the last of its users,
        # stops it (config/database.py).
        self.stdout.write("Stopped.")
        if exit_code:
            sys.exit(exit_code)

    def _healthy(self, base: str) -> bool:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def _announce(self, base: str) -> None:
        passwords = load_passwords()
        lines = [
            "",
            "Handoff is running.",
            f"  Sign in:    {base}/accounts/login/",
            f"  Admin:      {base}/admin/",
            f"  Health:     {base}/healthz",
        ]
        demo = Organization.objects.filter(name=DEMO_ORG).values_list("slug", flat=True).first()
        if demo:
            lines.insert(4, f"  Console:    {base}/o/{demo}/console/")
        for email, _name, role in DEMO_PEOPLE:
            if email in passwords:
                lines.append(f"  Demo {role:<6} {email} / {passwords[email]}")
        channel = "channels-redis" if settings.REDIS_URL else "in-memory (single process)"
        database = (
            "DATABASE_URL" if settings.DATABASE_URL else f"embedded ({settings.DATA_DIR}/postgres)"
        )
        lines += [
            f"  Database:   {database}",
            f"  Channels:   {channel}",
            "Press Ctrl-C to stop.",
            "",
        ]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))
        sys.stdout.flush()


def _stop_with_parent() -> None:
    """In the child, before it starts: Linux sends it SIGTERM if serve itself dies (SIGKILL, the
    OOM killer), so no web server or worker outlives the command that started it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: serve's own stop path still applies
        pass
