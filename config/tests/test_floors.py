"""The floors hold: no import between apps hides inside a function, and the contracts run.

A late import is how code on the wrong floor dodges a cycle, and the import-linter contracts
in pyproject.toml cannot tell it from an honest one. So an import of another app inside a
function is allowed only with a comment on it (or the line above) naming the Django constraint
that forces it: the app registry or a migration.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("config", "bots", "knowledge", "conversations", "escalation", "audit", "chat", "analytics")
SKIP = {"tests", "migrations"}
EXCUSES = ("app registry", "migration")


def late_imports(source: str, own_app: str) -> list[tuple[int, str]]:
    """(line, module) of each import of another project app made inside a function, without a
    comment naming what forces it."""
    lines = source.splitlines()
    found = []

    def excused(lineno: int) -> bool:
        # The import's own line, and the comment block right above it (imports between the
        # comment and this one included: one comment may excuse a group).
        above = []
        for line in reversed(lines[: lineno - 1]):
            stripped = line.strip()
            if not stripped.startswith(("#", "from ", "import ")):
                break
            above.append(stripped)
        nearby = " ".join([lines[lineno - 1], *above]).lower()
        return "#" in nearby and any(excuse in nearby for excuse in EXCUSES)

    def visit(node: ast.AST, inside: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if inside and isinstance(child, ast.Import | ast.ImportFrom):
                if isinstance(child, ast.Import):
                    modules = [alias.name for alias in child.names]
                else:
                    modules = [child.module or ""] if not child.level else []
                for module in modules:
                    app = module.split(".")[0]
                    if app in APPS and app != own_app and not excused(child.lineno):
                        found.append((child.lineno, module))
            visit(child, inside or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    visit(ast.parse(source), False)
    return found


def test_it_finds_a_late_import_of_another_app_and_accepts_an_excused_one():
    source = (
        "def f():\n"
        "    from escalation.services import escalation_open\n"
        "def g():\n"
        "    # The app registry is not ready when this module is imported.\n"
        "    from escalation.models import EscalationLog\n"
        "def h():\n"
        "    from conversations.models import Message  # same app: not a floor question\n"
    )
    assert late_imports(source, "conversations") == [(2, "escalation.services")]


def test_no_project_module_imports_another_app_inside_a_function():
    found = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if SKIP & set(path.relative_to(ROOT).parts):
                continue
            for line, module in late_imports(path.read_text(), app):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert found == []


def test_the_import_contracts_are_kept():
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint_imports is None:
        pytest.fail("lint-imports is not installed: `make install` installs the dev extras")
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
