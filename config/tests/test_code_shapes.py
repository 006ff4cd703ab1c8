"""Code shapes that have broken the product before, found by reading the source.

A refactor that moved imports to the top left `escalation/views.py` calling
`package.retrieved_by(...)` where `package` had become a local dict: a 500 on opening a
conversation, which no linter flags (the name is defined) and no test reached.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP = {".venv", ".data", "migrations", "node_modules", "staticfiles"}


def _is_dict(value: ast.AST) -> bool:
    if isinstance(value, ast.IfExp):
        return _is_dict(value.body) and _is_dict(value.orelse)
    return isinstance(value, ast.Dict | ast.DictComp) or (
        isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict"
    )


def suspicious_attribute_uses(source: str) -> list[tuple[int, str]]:
    """`name.attr` inside a function where `name` is a local the attribute cannot be on: a value
    the function assigns that is also a module-level import (the import is shadowed), or a
    local that is only ever a dict and `attr` is no dict method."""
    tree = ast.parse(source)
    imported = {
        alias.asname or alias.name.split(".")[0]
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        values: dict[str, list[ast.AST | None]] = {}
        plain = set()  # `name = value` targets; other stores (for, with, tuples) are unknown
        for node in ast.walk(function):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        values.setdefault(target.id, []).append(node.value)
                        plain.add(target)
        for node in ast.walk(function):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node not in plain:
                values.setdefault(node.id, []).append(None)
        dicts = {name for name, vals in values.items() if all(v and _is_dict(v) for v in vals)}
        for node in ast.walk(function):
            if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
                continue
            name = node.value.id
            if (name in values and name in imported) or (
                name in dicts and not hasattr(dict, node.attr)
            ):
                found.append((node.lineno, f"{name}.{node.attr}"))
    return found


def test_it_finds_a_method_called_on_a_local_dict():
    source = (
        "def build(log):\n"
        "    package = dict(log.package) if log else {}\n"
        "    return package.retrieved_by(log)\n"
    )
    assert suspicious_attribute_uses(source) == [(3, "package.retrieved_by")]


def test_it_finds_a_local_value_that_shadows_an_imported_module():
    source = (
        "from escalation import package\n"
        "def build(log):\n"
        "    package = dict(log.package)\n"
        "    return package.retrieved_by(log)\n"
    )
    assert suspicious_attribute_uses(source) == [(4, "package.retrieved_by")]


def test_no_function_calls_a_module_through_a_local_that_is_not_it():
    found = []
    for path in ROOT.rglob("*.py"):
        if SKIP & set(path.relative_to(ROOT).parts):
            continue
        for line, use in suspicious_attribute_uses(path.read_text()):
            found.append(f"{path.relative_to(ROOT)}:{line} {use}")
    assert found == []
