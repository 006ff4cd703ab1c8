"""PDF: the text layer of every page, within the budget of what reading it may cost."""

from __future__ import annotations

import io
import re

from pypdf import PdfReader, apply_configuration
from pypdf.errors import LimitReachedError

from knowledge.parsers.base import (
    _MB,
    ParseBudget,
    ParsedDocument,
    ParseError,
    _humanise,
    _single,
    _stem,
    _tidy,
    budget_mb,
)


def parse_pdf(name: str, data: bytes, budget: ParseBudget) -> list[ParsedDocument]:
    expands = (
        f'"{name}" expands to more than {budget_mb(budget.expanded_bytes)} of content, the limit '
        "for one file. Split it into smaller files, or upload its text as .txt or .md."
    )
    # pypdf's own limits stop any single stream (content, font, image) from decompressing past
    # the budget; the page checks below add up what text extraction would have to walk.
    limits = {
        key: budget.expanded_bytes
        for key in (
            "maximum_declared_stream_length",
            "array_based_stream_maximum_output_length",
            "zlib_maximum_output_length",
            "lzw_maximum_output_length",
            "run_length_maximum_output_length",
            "brotli_maximum_output_length",
            "jbig2_maximum_output_length",
            "stream_decoding_work_maximum_length",
        )
    }
    try:
        with apply_configuration(**limits):
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise ParseError(
                    f'"{name}" is password-protected; remove the password and try again.'
                )
            pages = _pdf_pages(name, reader, budget, expands)
            meta_title = (reader.metadata.title or "") if reader.metadata else ""
    except ParseError:
        raise
    except LimitReachedError as e:
        raise ParseError(expands) from e
    except Exception as e:  # pypdf raises many exception types on damaged files
        raise ParseError(f'"{name}" could not be read as a PDF (damaged or not a PDF).') from e
    # Words hyphenated at a line end are rejoined; "e-\nmail" becomes "email", a fair price.
    pages = [re.sub(r"([a-z])-\n\s*([a-z])", r"\1\2", p.replace("\r", "\n")) for p in pages]
    lines = (" ".join(line.split()) for page in pages for line in [*page.split("\n"), "", ""])
    body = _tidy("\n".join(lines))
    if not body:
        raise ParseError(
            f'"{name}" has no text layer (scanned?): only images or drawings were found. '
            "Run it through OCR, or upload the text as .txt or .md."
        )
    first = body.split("\n", 1)[0].strip()
    title = str(meta_title).strip() or (first if len(first) < 120 else _humanise(_stem(name)))
    return [_single(name, title, body, {})]


def _pdf_pages(name: str, reader: PdfReader, budget: ParseBudget, expands: str) -> list[str]:
    count = len(reader.pages)
    if count > budget.pages:
        raise ParseError(
            f'"{name}" has {count} pages; the limit is {budget.pages}. Split it into smaller files.'
        )
    pages, total = [], 0
    for number, page in enumerate(reader.pages, 1):
        # Decoded once here and cached by pypdf for extract_text: measuring costs no extra work.
        contents = page.get_contents()
        size = len(contents.get_data()) if contents is not None else 0
        if size > budget.page_bytes:
            raise ParseError(
                f'"{name}" page {number} expands to {size / _MB:.1f} MB of drawing instructions; '
                f"a page of text needs far less, and the limit is {budget_mb(budget.page_bytes)}. "
                "Upload its text as .txt or .md, or export the PDF again without the drawing."
            )
        total += size
        if total > budget.expanded_bytes:
            raise ParseError(expands)
        pages.append(page.extract_text() or "")
    return pages
