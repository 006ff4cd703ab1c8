"""FAQ spreadsheets as CSV: a header row with "question" and "answer" (optional: category,
url), one document per row."""

from __future__ import annotations

import csv
import io

from knowledge.parsers.base import ParsedDocument, ParseError, _tidy, _title, stable_id


def parse_faq_csv(name: str, text: str) -> list[ParsedDocument]:
    header_line = text.split("\n", 1)[0]
    # Counting in the header is more dependable than csv.Sniffer on whole rows, where commas
    # inside long quoted answers outvote the real delimiter.
    delimiter = max(",;\t", key=lambda d: (header_line.count(d), d == ","))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
        columns = {h.strip().lower(): i for i, h in reversed(list(enumerate(header)))}
        missing = [c for c in ("question", "answer") if c not in columns]
        if missing:
            found = ", ".join(f'"{h.strip()}"' for h in header if h.strip()) or "nothing"
            raise ParseError(
                f'Line 1: the header row needs "question" and "answer" columns '
                f"(optional: category, url); found {found}."
            )
        docs, seen, row_no, last_line = [], {}, 1, reader.line_num
        for row in reader:
            row_no += 1
            # Spreadsheets count rows, editors lines; they differ after multi-line cells.
            line, last_line = last_line + 1, reader.line_num
            where = f"Row {row_no}" if row_no == line else f"Row {row_no} (line {line})"
            if not any(cell.strip() for cell in row):
                continue
            cell = {col: row[i].strip() for col, i in columns.items() if i < len(row)}
            question, answer = _title(cell.get("question", "")), _tidy(cell.get("answer", ""))
            for col, value in (("question", question), ("answer", answer)):
                if not value:
                    raise ParseError(f"{where}: the {col} column is empty")
            key = question.casefold()
            if key in seen:
                raise ParseError(f'Duplicate question "{question}" (rows {seen[key]} and {row_no})')
            seen[key] = row_no
            docs.append(
                ParsedDocument(
                    external_id=stable_id(key),
                    title=question,
                    body=answer,
                    url=cell.get("url", ""),
                    category=cell.get("category", ""),
                    kind="faq",
                )
            )
    except csv.Error as e:
        raise ParseError(f"Line {reader.line_num}: {e} (invalid CSV)") from e
    return docs
