"""Articles as JSON Lines: one {"id", "title", "body"} object per line (optional: url,
category, product, language)."""

from __future__ import annotations

import json

from knowledge.parsers.base import (
    ParsedDocument,
    ParseError,
    _json_error,
    _language,
    _optional,
    _string,
    _tidy,
    _title,
    stable_id,
)


def parse_jsonl(name: str, text: str) -> list[ParsedDocument]:
    docs, seen = [], {}
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise _json_error(e, line=n) from e
        if not isinstance(obj, dict):
            raise ParseError(
                f'Line {n}: expected an object like {{"id": ..., "title": ..., "body": ...}}'
            )
        for key in ("id", "title", "body"):
            if key not in obj or obj[key] is None:
                raise ParseError(f'Line {n}: missing "{key}"')
        if isinstance(obj["id"], int) and not isinstance(obj["id"], bool):
            obj["id"] = str(obj["id"])
        doc_id = _string(obj["id"], f'Line {n}: "id"')
        title = _title(_string(obj["title"], f'Line {n}: "title"'))
        body = _tidy(_string(obj["body"], f'Line {n}: "body"'))
        for key, value in (("id", doc_id), ("title", title), ("body", body)):
            if not value:
                raise ParseError(f'Line {n}: "{key}" is empty')
        if doc_id in seen:
            raise ParseError(f'Duplicate id "{doc_id}" (lines {seen[doc_id]} and {n})')
        seen[doc_id] = n
        meta = {k: _optional(obj, k, f'Line {n}: "{k}"') for k in ("url", "category", "product")}
        lang = f'Line {n}: "language"'
        meta["language"] = _language(_optional(obj, "language", lang), lang)
        docs.append(ParsedDocument(external_id=stable_id(doc_id), title=title, body=body, **meta))
    return docs
