"""Intents, in JSON or YAML: {"intents": [{"tag", "patterns", "responses"}]}, one document
per intent."""

from __future__ import annotations

from collections.abc import Callable

from knowledge.parsers.base import (
    ParsedDocument,
    ParseError,
    _humanise,
    _json_type,
    _load_json,
    _load_yaml,
    _optional,
    _string,
    _tidy,
    _title,
    stable_id,
)


def parse_intents(name: str, text: str) -> list[ParsedDocument]:
    is_yaml = name.lower().endswith((".yaml", ".yml")) or not text.lstrip().startswith("{")
    obj = _load_yaml(text) if is_yaml else _load_json(text)
    if not isinstance(obj, dict) or "intents" not in obj:
        raise ParseError(
            'Expected an "intents" list at the top level, like '
            '{"intents": [{"tag": "...", "patterns": ["..."], "responses": ["..."]}]}.'
        )
    intents = obj["intents"]
    if not isinstance(intents, list):
        raise ParseError(f"intents: must be a list, got {_json_type(intents)}")
    docs, seen = [], {}
    for i, item in enumerate(intents):
        path = f"intents[{i}]"
        if not isinstance(item, dict):
            raise ParseError(f"{path}: must be an object with tag, patterns and responses")
        if "tag" not in item:
            raise ParseError(f'{path}: missing "tag"')
        tag = _string(item["tag"], f"{path}.tag")
        if not tag:
            raise ParseError(f"{path}.tag: is empty")
        if tag.casefold() in seen:
            first = seen[tag.casefold()]
            raise ParseError(f'Duplicate intent tag "{tag}" (intents[{first}] and {path})')
        seen[tag.casefold()] = i
        patterns = _dedupe(_string_list(item, "patterns", path), key=str.casefold)
        if not patterns:
            raise ParseError(f'{path}.patterns: intent "{tag}" has no patterns (example questions)')
        responses = _dedupe(_string_list(item, "responses", path, collapse=False), key=str)
        docs.append(
            ParsedDocument(
                external_id=stable_id(tag),
                title=_title(_humanise(tag)),
                body="\n\n".join(responses),
                url=_optional(item, "url", f"{path}.url"),
                category=_optional(item, "category", f"{path}.category"),
                kind="intent",
                patterns=patterns,
                responses=responses,
            )
        )
    return docs


def _string_list(item: dict, key: str, path: str, *, collapse: bool = True) -> list[str]:
    value = item.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ParseError(f"{path}.{key}: must be a list of strings, got {_json_type(value)}")
    out = []
    for j, entry in enumerate(value):
        if not isinstance(entry, str):
            raise ParseError(f"{path}.{key}[{j}]: must be a string, got {_json_type(entry)}")
        entry = " ".join(entry.split()) if collapse else _tidy(entry)
        if entry:
            out.append(entry)
    return out


def _dedupe(values: list[str], *, key: Callable[[str], str]) -> list[str]:
    seen: set[str] = set()
    return [v for v in values if not (key(v) in seen or seen.add(key(v)))]
