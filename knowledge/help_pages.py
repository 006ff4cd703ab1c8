"""A bot's public help pages: one read-only page per document, one anchor per section, and the
deep links citations point to.

The bot already quotes its articles and FAQs to anyone who asks; the help page shows the same
text whole, so a customer can read the passage in its place and every citation is clickable.
Intents are not shown: their patterns are what customers type, not help content.

Anchors are derived, never stored: a section's anchor is its heading slugified, de-duplicated
in page order ("fees", "fees-2"). The page and the citation compute them with the same
function from the same text (knowledge.chunking.sections, which chunk headings come from), so
a citation's `#returns-and-refunds` is the id the page gives that heading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.urls import reverse
from django.utils.text import slugify

from config.links import safe_http_url
from knowledge.chunking import sections

PATH_SEPARATOR = " > "  # chunking joins nested headings so: "Shipping > Fees"


@dataclass
class Heading:
    text: str
    level: int  # 2 for a top-level section: the page's title is its h1
    anchor: str


@dataclass
class Block:
    kind: str  # "p" (a paragraph, lines joined), "ul"/"ol" (items), "pre" (code, tables)
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class Section:
    path: str  # the heading path chunks carry, "" for text before the first heading
    headings: list[Heading] = field(default_factory=list)  # opened here, outermost first
    paragraphs: list[str] = field(default_factory=list)  # the text, block by block
    blocks: list[Block] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return self.headings[-1].anchor if self.headings else ""


def page_sections(body: str, title: str) -> list[Section]:
    """The document as its page shows it: each section with the headings it opens (a nested
    section's parent heading, if not shown yet, opens with it) and its paragraphs."""
    taken: set[str] = set()
    shown: list[str] = []  # the heading path currently open
    out = []
    for path, text in sections(body, title):
        parts = path.split(PATH_SEPARATOR) if path else []
        common = 0
        while common < min(len(parts), len(shown)) and parts[common] == shown[common]:
            common += 1
        if common == len(parts) == len(shown) and parts:
            common -= 1  # the same path again (two "## FAQ" in a row): a heading of its own
        section = Section(path)
        for depth in range(common, len(parts)):
            anchor = _unique(slugify(parts[depth], allow_unicode=True) or "section", taken)
            section.headings.append(Heading(parts[depth], min(depth + 2, 6), anchor))
        shown = parts
        section.paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
        section.blocks = [_block(p) for p in section.paragraphs]
        out.append(section)
    return out


_ITEM = re.compile(r"^\s*(?:([-*+•])|\d{1,3}[.)])\s+")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _block(text: str) -> Block:
    """How a block of the parsed text reads: a list, code or a table kept line by line, a
    paragraph's hard-wrapped lines joined."""
    lines = text.split("\n")
    if _FENCE.match(lines[0]):
        return Block("pre", [line for line in lines if not _FENCE.match(line)])
    if all("|" in line for line in lines) and len(lines) > 1:
        return Block("pre", lines)
    if (first := _ITEM.match(lines[0])) is not None:
        items: list[str] = []
        for line in lines:
            if _ITEM.match(line) and not line[:1].isspace():
                items.append(_ITEM.sub("", line, count=1))
            elif items:
                items[-1] += " " + line.strip()  # a continuation or a nested item, inline
        return Block("ul" if first.group(1) else "ol", items)
    return Block("p", [" ".join(" ".join(lines).split())])


def _unique(slug: str, taken: set[str]) -> str:
    candidate, n = slug, 1
    while candidate in taken:
        n += 1
        candidate = f"{slug}-{n}"
    taken.add(candidate)
    return candidate


def section_of(body: str, title: str, heading: str, text: str = "") -> Section | None:
    """The section a quoted text comes from: the one holding its first line that is found
    whole, else the first with the chunk's heading path; None when neither is found.

    Not just the chunk's heading: a small section is merged into its neighbour's chunk, which
    carries the larger one's heading, and the quote may come from either (or from the same
    path twice in one document)."""
    sections = page_sections(body, title)
    flat = [" ".join(" ".join(s.paragraphs).split()) for s in sections]
    for line in text.splitlines():
        probe = " ".join(line.lstrip("…").split()[:12])
        if len(probe.split()) < 4:
            continue  # a label or a fragment: too short to tell sections apart
        found = [s for s, words in zip(sections, flat, strict=True) if probe in words]
        if found:
            return next((s for s in found if s.path == heading), found[0])
    return next((s for s in sections if heading and s.path == heading), None)


def section_anchor(body: str, title: str, heading: str, text: str = "") -> str:
    section = section_of(body, title, heading, text)
    return section.anchor if section else ""


def section_heading(section: Section | None) -> str:
    return section.headings[-1].text if section and section.headings else ""


def document_slug(title: str) -> str:
    return slugify(title)[:80].strip("-") or "document"


def help_page_path(*, bot, document) -> str:
    return reverse(
        "help_document",
        args=[bot.organization.slug, bot.slug, document.pk, document_slug(document.title)],
    )


def help_page_url(
    *, organization_slug: str, bot_slug: str, document_id: int, title: str, anchor: str = ""
) -> str:
    """The document's help page on this site (SITE_URL, the public address), at a section."""
    path = reverse(
        "help_document", args=[organization_slug, bot_slug, document_id, document_slug(title)]
    )
    return settings.SITE_URL + path + (f"#{quote(anchor)}" if anchor else "")


def text_fragment_url(url: str, heading: str) -> str:
    """The document's own page, scrolled to the heading where the browser supports text
    fragments (#:~:text=, ignored elsewhere). Not when the address already has a fragment: that
    names a place on the page already."""
    url = safe_http_url(url)
    if not url or not heading or urlsplit(url).fragment or url.endswith("#"):
        return url
    text = heading.split(PATH_SEPARATOR)[-1].strip()
    # "-", "&" and "," are the directive's own syntax, so they are escaped too.
    return f"{url}#:~:text={quote(text, safe='').replace('-', '%2D')}" if text else url
