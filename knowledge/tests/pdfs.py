"""PDFs made in the tests: a small text one, and a bomb (a few KB of Flate that expands to
megabytes of drawing instructions). No Django here: the parse child imports this module too."""

from __future__ import annotations

import io
import os
import time
import zlib

from pypdf import PdfWriter
from pypdf.generic import DictionaryObject, NameObject, StreamObject


def pdf_with_pages(contents: list[bytes]) -> bytes:
    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    for content in contents:
        page = writer.add_blank_page(612, 792)
        stream = StreamObject()
        stream.set_data(zlib.compress(content, 9))
        stream[NameObject("/Filter")] = NameObject("/FlateDecode")
        page[NameObject("/Contents")] = writer._add_object(stream)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def text_pdf(*lines: str) -> bytes:
    ops = b"".join(b"(" + line.encode() + b") Tj 0 -16 Td " for line in lines)
    return pdf_with_pages([b"BT /F1 12 Tf 72 720 Td " + ops + b"ET"])


def pdf_bomb(pages: int = 2, expanded: int = 2_000_000) -> bytes:
    """The shape of issue 12's finding: pages of ~2 MB of text operators, a few KB on disk."""
    body = b"BT /F1 12 Tf 72 720 Td " + b"(A) Tj " * (expanded // 7) + b"ET"
    return pdf_with_pages([body] * pages)


def parse_forever(*, filename, data, format, budget):
    """A parser that never finishes: it leaves its pid where the test can find it, then spins."""
    with open(filename, "w") as out:
        out.write(str(os.getpid()))
    while True:
        time.sleep(0.05)
