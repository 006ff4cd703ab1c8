"""What every format shares: the document, the error, the budget, decoding, and the helpers
that name a field or tidy a text."""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from dataclasses import dataclass, field

import yaml

from config.links import safe_http_url

FORMATS = ("intents", "faq_csv", "markdown", "html", "text", "pdf", "jsonl")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
_MAX_ID_CHARS = 200
_MAX_TITLE_CHARS = 300


class ParseError(ValueError):
    """A user-facing message that names the line, row or field at fault."""


_MB = 1024 * 1024


@dataclass(frozen=True)
class ParseBudget:
    """What reading one file may cost. A few KB of PDF can expand into megabytes of drawing
    instructions that take minutes of CPU to walk, so every limit is on the expanded content,
    not on the upload's size. The defaults are those of config/settings.py."""

    page_bytes: int = 1 * _MB  # one PDF page's decompressed content
    expanded_bytes: int = 32 * _MB  # all pages' content together, and any one PDF stream
    text_bytes: int = 20 * _MB  # the text extracted, whatever the format
    pages: int = 1000
    seconds: float = 60  # enforced by knowledge/isolation.py, which can stop the reader


def budget_mb(limit: int) -> str:
    return f"{limit / _MB:.3g} MB" if limit >= _MB // 10 else f"{limit / 1024:.3g} KB"


@dataclass
class ParsedDocument:
    external_id: str  # stable within its source: tag, id, normalised question or file name
    title: str
    body: str  # markdown-like: "# Heading" lines, "- item" lists, blank line between paragraphs
    url: str = ""
    category: str = ""
    product: str = ""
    language: str = ""  # ISO 639-1 when the source says, else ""
    kind: str = "article"  # "article" | "faq" | "intent"
    patterns: list[str] = field(default_factory=list)  # intents: what customers say
    responses: list[str] = field(default_factory=list)  # intents: what the bot answers

    def __post_init__(self) -> None:
        # Every format's address becomes a link for agents and customers: http(s) or none.
        self.url = safe_http_url(self.url)


# --- Decoding ---------------------------------------------------------------------------------
def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise ParseError(f"The file starts like UTF-16 text but is not: {e.reason}.") from e
    else:
        if data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8) :]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            raise ParseError(
                f"The file is not UTF-8 text: invalid byte 0x{data[e.start]:02X} at line {line}. "
                "Save it as UTF-8 and upload it again."
            ) from e
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ParseError(f"Line {line}: the file contains NUL bytes; it looks binary, not text.")
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- JSON and YAML (intents, JSON Lines, front matter) ----------------------------------------
_JSON_MESSAGES = {
    "Expecting ',' delimiter": 'expected ","',
    "Expecting ':' delimiter": 'expected ":"',
    "Expecting value": "expected a value",
    "Expecting property name enclosed in double quotes": "expected a key in double quotes",
    "Extra data": "unexpected text after the end of the JSON",
}


def _json_error(e: json.JSONDecodeError, line: int | None = None) -> ParseError:
    msg = _JSON_MESSAGES.get(e.msg) or e.msg.split(":")[0].lower()
    return ParseError(f"Line {line or e.lineno}, column {e.colno}: {msg} (invalid JSON)")


def _load_json(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise _json_error(e) from e
    except RecursionError as e:
        raise ParseError("The JSON is nested too deeply.") from e


class _IntentsYamlLoader(yaml.BaseLoader):
    # BaseLoader keeps every scalar a string: YAML 1.1 would turn the patterns "no", "yes" or
    # "off" into booleans and "1.10" into a float, silently changing what customers said.
    # Aliases are refused because a few of them can expand into billions of nodes.
    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ParseError(
                f"Line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not "
                "supported in intent files; write the values out."
            )
        return super().compose_node(parent, index)


def _load_yaml(text: str, *, first_line: int = 1) -> object:
    try:
        return yaml.load(text, Loader=_IntentsYamlLoader)  # BaseLoader constructs no objects
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"Line {mark.line + first_line}, column {mark.column + 1}: " if mark else ""
        raise ParseError(f"{where}{e.problem or e.context} (invalid YAML)") from e
    except yaml.YAMLError as e:
        raise ParseError(f"Invalid YAML: {e}") from e


# --- Helpers ----------------------------------------------------------------------------------
def _single(name: str, title: str, body: str, meta: dict[str, str]) -> ParsedDocument:
    if not re.search(r"\w", body):
        raise ParseError(f'"{name}" has no text to learn from.')
    return ParsedDocument(
        external_id=stable_id(name),
        title=_title(title),
        body=body,
        url=meta.get("url", ""),
        category=meta.get("category", ""),
        product=meta.get("product", ""),
        language=meta.get("language", ""),
    )


def _tidy(text: str) -> str:
    """Trailing spaces off, runs of blank lines down to one, no blank lines at the ends."""
    text = "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def _string(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise ParseError(f"{path}: must be a string, got {_json_type(value)}")
    return value.strip()


def _optional(obj: dict, key: str, label: str) -> str:
    value = obj.get(key)
    return "" if value is None else " ".join(_string(value, label).split())


def _language(value: str, path: str | None) -> str:
    """ISO 639-1 from a tag such as "en-US"; a malformed value is an error when it was declared."""
    code = value.strip().replace("_", "-").split("-")[0].lower()
    if not code or re.fullmatch(r"[a-z]{2}", code):
        return code
    if path is None:
        return ""
    raise ParseError(f'{path}: must be a two-letter ISO 639-1 code like "en", got "{value}"')


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")


def _basename(filename: str) -> str:
    # Some browsers send "C:\fakepath\name.pdf".
    return re.split(r"[\\/]", filename or "")[-1].strip() or "upload"


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name.strip(".") else name


def _humanise(slug: str) -> str:
    words = " ".join(re.sub(r"[_\-]+", " ", slug).split())
    return words[:1].upper() + words[1:]


def _title(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_TITLE_CHARS else text[: _MAX_TITLE_CHARS - 1] + "…"


def stable_id(value: str, limit: int = _MAX_ID_CHARS) -> str:
    """`value` as a document id of at most `limit` characters: itself when it fits, else cut
    and suffixed with a digest of the whole, so ids stay unique and stable within an indexed
    column's size."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha1(value.encode(), usedforsecurity=False).hexdigest()[:12]
    return f"{value[: limit - 13]}#{digest}"
