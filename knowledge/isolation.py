"""Read an upload in a child process that is killed when its time budget runs out.

Parsers are pure Python walking untrusted input: a crafted file can keep one busy for minutes
(a few KB of PDF expanding into megabytes of drawing instructions), and a thread cannot be
stopped. The child is a fresh interpreter (`python -m knowledge.isolation`), not a fork: the
worker has torch loaded, and forking a process with its threads running can deadlock the child.
A fresh interpreter costs about half a second, once per upload.

Both directions are plain JSON and bytes, never pickle: the child handles hostile input, so the
worker trusts nothing it sends back beyond a list of documents or an error message.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import resource
import subprocess
import sys
from pathlib import Path

from django.conf import settings  # read by parse_budget only: the child never configures Django

from knowledge.parsers import ParseBudget, ParsedDocument, ParseError

_ROOT = Path(__file__).resolve().parent.parent
_TARGET = "knowledge.parsers:parse_upload"
_MEMORY = 2 * 1024 * 1024 * 1024


def parse_budget() -> ParseBudget:
    """The budget config/settings.py sets (KNOWLEDGE_PARSE_*)."""
    mb = 1024 * 1024
    return ParseBudget(
        page_bytes=settings.KNOWLEDGE_PARSE_MAX_PAGE_MB * mb,
        expanded_bytes=settings.KNOWLEDGE_PARSE_MAX_EXPANDED_MB * mb,
        text_bytes=settings.KNOWLEDGE_PARSE_MAX_TEXT_MB * mb,
        pages=settings.KNOWLEDGE_PARSE_MAX_PAGES,
        seconds=settings.KNOWLEDGE_PARSE_SECONDS,
    )


def parse_isolated(
    *,
    filename: str,
    data: bytes,
    format: str | None,
    budget: ParseBudget,
    target: str = _TARGET,
) -> list[ParsedDocument]:
    """parse_upload in a child process: its documents, or a ParseError with the reason (the
    file's own fault, or its budget spent). `target` ("module:function") is for tests."""
    header = {
        "target": target,
        "filename": filename,
        "format": format,
        "budget": dataclasses.asdict(budget),
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "knowledge.isolation"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=_ROOT,
    )
    try:
        out, err = child.communicate(json.dumps(header).encode() + b"\n" + data, budget.seconds)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise ParseError(
            f'"{filename}" took longer than {budget.seconds:g} s to read, the limit for one file. '
            "Split it into smaller files, or upload its text as .txt or .md."
        ) from None
    try:
        answer = json.loads(out)
    except ValueError:
        answer = None
    if child.returncode != 0 or not isinstance(answer, dict):
        # Out of memory or a crash in a parser: the file's doing far more often than not.
        last = err.decode(errors="replace").strip().splitlines()[-1:] or [
            f"exit {child.returncode}"
        ]
        raise ParseError(f'"{filename}" could not be read: the reader stopped ({last[0][:200]}).')
    if "error" in answer:
        raise ParseError(answer["error"])
    return [ParsedDocument(**doc) for doc in answer["documents"]]


def _child() -> None:
    # Memory is part of the budget too: past this the child fails alone, not the worker.
    resource.setrlimit(resource.RLIMIT_AS, (_MEMORY, _MEMORY))
    header = json.loads(sys.stdin.buffer.readline())
    data = sys.stdin.buffer.read()
    module, _, name = header["target"].partition(":")
    parse = getattr(importlib.import_module(module), name)
    try:
        documents = parse(
            filename=header["filename"],
            data=data,
            format=header["format"],
            budget=ParseBudget(**header["budget"]),
        )
        answer: dict = {"documents": [dataclasses.asdict(doc) for doc in documents]}
    except ParseError as exc:
        answer = {"error": str(exc)}
    sys.stdout.buffer.write(json.dumps(answer).encode())


if __name__ == "__main__":
    _child()
