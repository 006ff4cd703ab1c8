"""Starting Django imports no model library. torch and sentence-transformers take seconds to
import; a module-level import of them anywhere in the apps (the knowledge gaps once did it, for
one function) made every start of the web process, the worker and each manage.py command
seconds slower, and the test suite minutes slower through its subprocess tests. They load when
something embeds or groups, not when the app starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from django.conf import settings

HEAVY = ("torch", "sentence_transformers", "transformers")


def test_django_starts_without_importing_torch_or_sentence_transformers():
    script = (
        "import django, json, sys; django.setup();"
        "from django.urls import get_resolver; get_resolver().url_patterns;"
        "import config.asgi;"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
