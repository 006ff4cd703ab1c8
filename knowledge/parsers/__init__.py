"""Turn an uploaded file into documents: pure functions, no database.

Every problem with the upload is a ParseError whose message is shown to the person who uploaded
it, so it names the line, row or field at fault and says what was expected.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml
from bs4 import BeautifulSoup, NavigableString, Tag
from pypdf import PdfReader, apply_configuration
from pypdf.errors import LimitReachedError

from config.links import safe_http_url

FORMATS = ("intents", "faq_csv", "markdown", "html", "text", "pdf", "jsonl")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024

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


# --- Entry points -----------------------------------------------------------------------------
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


def parse_upload(
    *, filename: str, data: bytes, format: str | None = None, budget: ParseBudget | None = None
) -> list[ParsedDocument]:
    budget = budget or ParseBudget()
    if len(data) > MAX_UPLOAD_BYTES:
        raise ParseError(
            f"The file is {len(data) / 1024 / 1024:.1f} MB; "
            f"the limit is {MAX_UPLOAD_BYTES // 1024 // 1024} MB."
        )
    if not data.strip():
        raise ParseError("The file is empty.")
    fmt = format or detect_format(filename, data)
    if fmt not in FORMATS:
        raise ParseError(f'Unknown format "{fmt}"; expected one of: {", ".join(FORMATS)}.')
    name = _basename(filename)
    if fmt == "pdf":
        docs = _parse_pdf(name, data, budget)
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


# --- Intents (JSON or YAML) -------------------------------------------------------------------
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


def _parse_intents(name: str, text: str) -> list[ParsedDocument]:
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
                external_id=_stable_id(tag),
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


# --- FAQ CSV ----------------------------------------------------------------------------------
def _parse_faq_csv(name: str, text: str) -> list[ParsedDocument]:
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
                    external_id=_stable_id(key),
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


# --- Markdown ---------------------------------------------------------------------------------
_FENCE = re.compile(r"^\s*(```|~~~)")
_BULLET = re.compile(r"^(\s*)[*+•]\s+")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")


def _parse_markdown(name: str, text: str) -> list[ParsedDocument]:
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


# --- HTML -------------------------------------------------------------------------------------
_DROP = ("script", "style", "nav", "header", "footer", "aside", "form", "noscript", "template")
_DROP += ("svg", "iframe", "button", "select", "dialog")
_BLOCKS = {
    "p", "div", "section", "article", "main", "blockquote", "dl", "dt", "dd", "figure",
    "figcaption", "details", "summary", "address", "body", "center", "hr", "li", "tr", "td",
}  # fmt: skip


def _parse_html(name: str, text: str) -> list[ParsedDocument]:
    soup = BeautifulSoup(text, "html.parser")
    html = soup.find("html")
    meta = {"language": _language(str(html.get("lang", "")) if html else "", None)}
    canonical = soup.find("link", rel="canonical", href=True)
    og_url = soup.find("meta", property="og:url", content=True)
    meta["url"] = (canonical["href"] if canonical else og_url["content"] if og_url else "").strip()
    head_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup.find_all(_DROP):
        tag.decompose()
    root = soup.find("main") or soup.find(attrs={"role": "main"}) or soup.body or soup
    blocks = _HtmlBlocks()
    blocks.walk(root)
    h1 = root.find("h1")
    # The page's own h1 over <title>: titles usually carry a " | Site name" suffix.
    title = (h1 and _inline(h1)) or head_title or _humanise(_stem(name))
    return [_single(name, title, blocks.text(), meta)]


class _HtmlBlocks:
    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.inline: list[str] = []

    def text(self) -> str:
        self.flush()
        return _tidy("\n\n".join(self.blocks))

    def flush(self) -> None:
        lines = [" ".join(part.split()) for part in "".join(self.inline).split("\n")]
        paragraph = "\n".join(line for line in lines if line)
        if paragraph:
            self.blocks.append(paragraph)
        self.inline = []

    def walk(self, node: Tag) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if type(child) is NavigableString:
                    self.inline.append(re.sub(r"\s+", " ", str(child)))
                continue
            name = child.name
            if re.fullmatch(r"h[1-6]", name):
                self.flush()
                if heading := _inline(child):
                    self.blocks.append("#" * int(name[1]) + " " + heading)
            elif name in ("ul", "ol"):
                self.flush()
                self.blocks.append("\n".join(_list_lines(child, 0)))
            elif name == "table":
                self.flush()
                rows = [_table_row(tr) for tr in child.find_all("tr")]
                self.blocks.append("\n".join(row for row in rows if row))
            elif name == "pre":
                self.flush()
                self.blocks.append(child.get_text().strip("\n"))
            elif name == "br":
                self.inline.append("\n")
            elif name in _BLOCKS:
                self.flush()
                self.walk(child)
                self.flush()
            else:
                self.walk(child)


def _list_lines(tag: Tag, depth: int) -> list[str]:
    lines = []
    for n, li in enumerate(tag.find_all("li", recursive=False), 1):
        marker = f"{n}." if tag.name == "ol" else "-"
        nested = [c for c in li.children if isinstance(c, Tag) and c.name in ("ul", "ol")]
        for sub in nested:
            sub.extract()
        if text := _inline(li):
            lines.append("  " * depth + f"{marker} {text}")
        for sub in nested:
            lines.extend(_list_lines(sub, depth + 1))
    return lines


def _table_row(tr: Tag) -> str:
    cells = [_inline(cell) for cell in tr.find_all(("td", "th"), recursive=False)]
    return " | ".join(cells) if any(cells) else ""


def _inline(node: Tag) -> str:
    parts: list[str] = []

    def visit(n: Tag) -> None:
        for child in n.children:
            if isinstance(child, Tag):
                spaced = child.name in _BLOCKS or child.name in ("br", "ul", "ol", "table")
                parts.append(" " if spaced else "")
                visit(child)
                parts.append(" " if spaced else "")
            elif type(child) is NavigableString:
                parts.append(str(child))

    visit(node)
    return " ".join("".join(parts).split())


# --- Plain text, PDF --------------------------------------------------------------------------
def _parse_text(name: str, text: str) -> list[ParsedDocument]:
    body = _tidy(text)
    first = body.split("\n", 1)[0].strip()
    title = first if 0 < len(first) < 120 else _humanise(_stem(name))
    return [_single(name, title, body, {})]


def _parse_pdf(name: str, data: bytes, budget: ParseBudget) -> list[ParsedDocument]:
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


# --- JSON Lines articles ----------------------------------------------------------------------
def _parse_jsonl(name: str, text: str) -> list[ParsedDocument]:
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
        docs.append(ParsedDocument(external_id=_stable_id(doc_id), title=title, body=body, **meta))
    return docs


_PARSERS: dict[str, Callable[[str, str], list[ParsedDocument]]] = {
    "intents": _parse_intents,
    "faq_csv": _parse_faq_csv,
    "markdown": _parse_markdown,
    "html": _parse_html,
    "text": _parse_text,
    "jsonl": _parse_jsonl,
}


# --- Helpers ----------------------------------------------------------------------------------
def _single(name: str, title: str, body: str, meta: dict[str, str]) -> ParsedDocument:
    if not re.search(r"\w", body):
        raise ParseError(f'"{name}" has no text to learn from.')
    return ParsedDocument(
        external_id=_stable_id(name),
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


def _stable_id(value: str) -> str:
    # Keeps ids within an indexed column's size while staying unique and stable.
    if len(value) <= _MAX_ID_CHARS:
        return value
    digest = hashlib.sha1(value.encode(), usedforsecurity=False).hexdigest()[:12]
    return f"{value[: _MAX_ID_CHARS - 13]}#{digest}"
