"""HTML pages: the main content as headings, paragraphs, lists and table rows; navigation,
scripts and forms dropped."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, NavigableString, Tag

from knowledge.parsers.base import ParsedDocument, _humanise, _language, _single, _stem, _tidy

_DROP = ("script", "style", "nav", "header", "footer", "aside", "form", "noscript", "template")
_DROP += ("svg", "iframe", "button", "select", "dialog")
_BLOCKS = {
    "p", "div", "section", "article", "main", "blockquote", "dl", "dt", "dd", "figure",
    "figcaption", "details", "summary", "address", "body", "center", "hr", "li", "tr", "td",
}  # fmt: skip


def parse_html(name: str, text: str) -> list[ParsedDocument]:
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
