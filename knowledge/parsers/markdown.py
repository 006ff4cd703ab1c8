"""Markdown, with optional YAML front matter (title, url, category, product, language)."""

from __future__ import annotations

import re

from knowledge.parsers.base import (
    ParsedDocument,
    ParseError,
    _humanise,
    _language,
    _load_yaml,
    _single,
    _stem,
    _tidy,
)

_FENCE = re.compile(r"^\s*(```|~~~)")
_BULLET = re.compile(r"^(\s*)[*+•]\s+")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")


def parse_markdown(name: str, text: str) -> list[ParsedDocument]:
    meta, text = _front_matter(text)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    lines, out, fenced, underline = text.split("\n"), [], False, False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
        elif underline:
            line, underline = "", False
        elif not fenced:
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            plain = line.strip() and not _LIST_ITEM.match(line) and not line.startswith("#")
            if plain and re.fullmatch(r" {0,3}(=+|-+)\s*", nxt):
                line, underline = ("# " if "=" in nxt else "## ") + line.strip(), True
            elif re.fullmatch(r" {0,3}(-{3,}|\*{3,}|_{3,})\s*", line):
                line = ""  # a thematic break: the blank line already separates the blocks
            else:
                line = _BULLET.sub(r"\1- ", line)
                line = re.sub(r"^(#{1,6})\s+(.*?)(\s+#+)?\s*$", r"\1 \2", line)
        out.append(line)
    body = _tidy("\n".join(out))
    h1 = re.search(r"^# (.+)$", body, re.M)
    title = meta.get("title") or (h1.group(1).strip() if h1 else _humanise(_stem(name)))
    return [_single(name, title, body, meta)]


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    match = re.match(r"---\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|$)", text, re.S)
    if not match:
        return {}, text
    data = _load_yaml(match.group(1) or "", first_line=2) or {}
    if not isinstance(data, dict):
        raise ParseError("Front matter: must be key: value lines between the --- lines")
    meta = {}
    for key in ("title", "url", "category", "product", "language"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise ParseError(f'Front matter "{key}": must be text')
        meta[key] = " ".join((value or "").split())
    meta["language"] = _language(meta["language"], 'Front matter "language"')
    return meta, text[match.end() :]
