"""Turn an uploaded file into documents: pure functions, no database.

Every problem with the upload is a ParseError whose message is shown to the person who uploaded
it, so it names the line, row or field at fault and says what was expected.

One module per format (intents, faq_csv, markdown, html, plain, pdf, jsonl), each with its
`parse_<format>`; detect.py names an upload's format and base.py holds what they all share.
The names imported from here are the package's public face.
"""

from __future__ import annotations

from collections.abc import Callable

from knowledge.parsers.base import (
    FORMATS,
    MAX_UPLOAD_BYTES,
    ParseBudget,
    ParsedDocument,
    ParseError,
    _basename,
    _decode,
    budget_mb,
    stable_id,
)
from knowledge.parsers.detect import ACCEPTED, detect_format
from knowledge.parsers.faq_csv import parse_faq_csv
from knowledge.parsers.html import parse_html
from knowledge.parsers.intents import parse_intents
from knowledge.parsers.jsonl import parse_jsonl
from knowledge.parsers.markdown import parse_markdown
from knowledge.parsers.pdf import parse_pdf
from knowledge.parsers.plain import parse_text

__all__ = [
    "ACCEPTED",
    "FORMATS",
    "MAX_UPLOAD_BYTES",
    "ParseBudget",
    "ParseError",
    "ParsedDocument",
    "budget_mb",
    "check_upload",
    "detect_format",
    "parse_upload",
    "stable_id",
]


def check_upload(data: bytes) -> None:
    """The checks every upload passes before it is read, cheap enough for a web request: within
    the size limit, and something in it."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise ParseError(
            f"The file is {len(data) / 1024 / 1024:.1f} MB; "
            f"the limit is {MAX_UPLOAD_BYTES // 1024 // 1024} MB."
        )
    if not data.strip():
        raise ParseError("The file is empty.")


def parse_upload(
    *, filename: str, data: bytes, format: str | None = None, budget: ParseBudget | None = None
) -> list[ParsedDocument]:
    budget = budget or ParseBudget()
    check_upload(data)
    fmt = format or detect_format(filename, data)
    if fmt not in FORMATS:
        raise ParseError(f'Unknown format "{fmt}"; expected one of: {", ".join(FORMATS)}.')
    name = _basename(filename)
    if fmt == "pdf":
        docs = parse_pdf(name, data, budget)
    else:
        text = _decode(data)
        if not text.strip():
            raise ParseError("The file is empty.")
        docs = _PARSERS[fmt](name, text)
    if not docs:
        raise ParseError(f'"{name}" contains no documents.')
    if sum(len(doc.body.encode()) for doc in docs) > budget.text_bytes:
        raise ParseError(
            f'"{name}" holds more than {budget_mb(budget.text_bytes)} of text, the limit for one '
            "file. Split it into smaller files."
        )
    return docs


_PARSERS: dict[str, Callable[[str, str], list[ParsedDocument]]] = {
    "intents": parse_intents,
    "faq_csv": parse_faq_csv,
    "markdown": parse_markdown,
    "html": parse_html,
    "text": parse_text,
    "jsonl": parse_jsonl,
}
