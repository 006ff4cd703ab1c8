"""Plain text: one document, titled by its first line when that is short."""

from __future__ import annotations

from knowledge.parsers.base import ParsedDocument, _humanise, _single, _stem, _tidy


def parse_text(name: str, text: str) -> list[ParsedDocument]:
    body = _tidy(text)
    first = body.split("\n", 1)[0].strip()
    title = first if 0 < len(first) < 120 else _humanise(_stem(name))
    return [_single(name, title, body, {})]
