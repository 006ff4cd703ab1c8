"""The README's commands run as written, from a shell that has exported nothing.

A new user copies them from a fresh clone after `make run`: a `manage.py` line that needs a
variable the README does not show (DEBUG, SECRET_KEY) fails for them, as `evaluate` did.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```(?:sh|bash|shell)\n(.*?)```", re.S)


def _commands() -> list[str]:
    commands = []
    for block in BLOCK.findall((ROOT / "README.md").read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def _manage_lines() -> list[str]:
    # Production's `docker compose run … manage.py` runs in the image, with its environment.
    return [c for c in _commands() if "manage.py" in c and "docker" not in c]


def _make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))


def test_the_readme_shows_manage_commands_and_make_targets():
    assert _manage_lines(), "the README's manage.py examples were not found"
    assert any(c.startswith("make ") for c in _commands())


@pytest.mark.parametrize("line", _manage_lines())
def test_each_manage_command_in_the_readme_starts_as_written(line):
    words = shlex.split(line)
    assignments = dict(w.split("=", 1) for w in words if re.match(r"^[A-Z_]+=", w))
    argv = [w for w in words if not re.match(r"^[A-Z_]+=", w)]
    command = argv[argv.index("manage.py") + 1]
    # A fresh shell: nothing the Makefile or CI exported, only what the line itself sets.
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    result = subprocess.run(
        [str(ROOT / argv[0]), "manage.py", command, "--help"],
        cwd=ROOT,
        env={**env, **assignments},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{line!r} fails as written:\n{result.stderr[-800:]}"


@pytest.mark.parametrize("line", [c for c in _commands() if c.startswith(("make ", "PORT="))])
def test_each_make_command_in_the_readme_names_a_real_target(line):
    words = [w for w in shlex.split(line) if not re.match(r"^[A-Z_]+=", w)]
    assert words[0] == "make"
    for target in words[1:]:
        assert target in _make_targets(), f"{line!r}: no target {target!r} in the Makefile"
