"""Which format an upload is: by its extension when it has a known one, else by its content."""

from __future__ import annotations

import json
import re

from knowledge.parsers.base import ParseError, _basename, _decode, _json_type, _load_json

_EXTENSIONS = {
    ext: fmt
    for fmt, exts in [
        ("intents", ".json .yaml .yml"), ("faq_csv", ".csv"), ("markdown", ".md .markdown"),
        ("html", ".html .htm"), ("text", ".txt"), ("pdf", ".pdf"), ("jsonl", ".jsonl .ndjson"),
    ]
    for ext in exts.split()
}  # fmt: skip
ACCEPTED = (
    "intents (.json, .yaml, .yml), FAQ (.csv), Markdown (.md), HTML (.html, .htm), "
    "plain text (.txt), PDF (.pdf), articles as JSON Lines (.jsonl, .ndjson)"
)


def detect_format(filename: str, data: bytes) -> str:
    """The format of an upload: by extension when it has a known one, else by its content."""
    name = _basename(filename)
    ext = ("." + name.rsplit(".", 1)[1].lower()) if "." in name else ""
    if ext == ".json":
        return _json_kind(_decode(data))
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    if sniffed := _sniff(data):
        return sniffed
    if not ext and sniffed is not None:
        return "text"
    what = f'"{ext}" files' if ext else f'"{name}"'
    raise ParseError(f"Can't read {what}. Accepted: {ACCEPTED}.")


def _sniff(data: bytes) -> str | None:
    """The format the content looks like; "" for text of no known shape, None for binary."""
    if data.lstrip()[:5] == b"%PDF-":
        return "pdf"
    try:
        text = _decode(data).lstrip()
    except ParseError:
        return None
    head = text[:4000].lower()
    if head.startswith(("<!doctype html", "<html")) or "<body" in head:
        return "html"
    if head.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and "intents" in obj:
            return "intents"
        try:
            return "jsonl" if isinstance(json.loads(text.split("\n", 1)[0]), dict) else ""
        except json.JSONDecodeError:
            return ""
    if re.search(r"^intents\s*:", text, re.M):
        return "intents"
    first = text.split("\n", 1)[0].lower()
    if re.fullmatch(r'"?question"?\s*[,;\t]\s*"?answer"?.*', first):
        return "faq_csv"
    if text.startswith("---\n") or re.search(r"^#{1,6} \S", text, re.M):
        return "markdown"
    return ""


def _json_kind(text: str) -> str:
    obj = _load_json(text)
    if isinstance(obj, dict) and "intents" in obj:
        return "intents"
    if isinstance(obj, dict):
        keys = ", ".join(f'"{k}"' for k in list(obj)[:8]) or "none"
        found = f"it has the keys {keys}"
    else:
        found = f"it holds {_json_type(obj)}"
    raise ParseError(
        f'A .json upload must be an intents file, {{"intents": [...]}}, but {found}. '
        'Upload articles as JSON Lines (.jsonl): one {"id", "title", "body"} object per line.'
    )
