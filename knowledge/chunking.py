"""Split parsed documents into passages to embed and cite: pure functions, no database.

Articles are split along their structure: sections by heading, then paragraphs, lists, tables
and code blocks, packed up to a token budget. A chunk never mixes two sections except when a
section is too small to stand alone. Output is deterministic for a given document and settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from knowledge.parsers import ParsedDocument

_TOKEN = re.compile(r"\w+|[^\w\s]")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST_ITEM = re.compile(r"^(\s*)(?:[-*+•]|\d{1,3}[.)])\s+")
# A sentence ends at . ! or ? (optionally closed by a quote or bracket) followed by space and a
# capital or digit, so "e.g. this" and "v1.2" stay whole; CJK full stops need no space.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*(\s+)(?=[\"'“‘(\[]?[^\W_a-z])|(?<=[。！？])(\s*)")


@dataclass
class ChunkDraft:
    position: int
    text: str
    embed_text: str
    kind: str
    heading: str = ""


def count_tokens(text: str) -> int:
    """Approximate count of all-MiniLM's WordPiece tokens, without loading the tokenizer.

    Each punctuation mark is one token and each word one, plus one per further 7 characters
    (WordPiece breaks rare long words into pieces). On the covidfaq and stackfaq help articles
    the total is within 1% of the real tokenizer's and 90% of documents are within -9%/+14%.
    """
    return sum(
        1 + (len(w) - 1) // 7 if w[0].isalnum() or w[0] == "_" else 1 for w in _TOKEN.findall(text)
    )


def chunk_document(
    doc: ParsedDocument, *, target_tokens: int = 300, overlap_tokens: int = 40, min_tokens: int = 30
) -> list[ChunkDraft]:
    """Chunks of one document; an article's or FAQ's are at most target_tokens + min_tokens.

    Intents yield one chunk per pattern (the customer-side utterances to match), FAQs one chunk
    for question and answer when it fits, articles passages that follow their headings.
    """
    if doc.kind == "intent":
        patterns = [p for p in doc.patterns if p.strip()]
        return [ChunkDraft(i, p, p, "pattern") for i, p in enumerate(patterns)]
    if doc.kind == "faq":
        return _chunk_faq(doc, target_tokens, overlap_tokens, min_tokens)
    drafts = _split(doc.body, doc.title, target_tokens, overlap_tokens, min_tokens)
    return [
        ChunkDraft(i, text, _join_lines(doc.title, heading, text), "passage", heading)
        for i, (heading, text) in enumerate(drafts)
    ]


def _chunk_faq(doc: ParsedDocument, target: int, overlap: int, min_tokens: int) -> list[ChunkDraft]:
    whole = f"Q: {doc.title}\nA: {doc.body}"
    if count_tokens(whole) <= target:
        return [ChunkDraft(0, whole, whole, "faq")]
    # Each passage is embedded with its question, so the budget left for the answer shrinks.
    budget = max(target - count_tokens(doc.title) - 2, target // 2)
    drafts = _split(doc.body, doc.title, budget, overlap, min_tokens)
    return [
        ChunkDraft(i, text, _join_lines(f"Q: {doc.title}", heading, text), "faq", heading)
        for i, (heading, text) in enumerate(drafts)
    ]


def _join_lines(*parts: str) -> str:
    return "\n".join(part for part in parts if part)


# --- Structure: sections, blocks, units -------------------------------------------------------
@dataclass
class _Unit:
    """The smallest piece a chunk boundary may fall after: a sentence, list item or line."""

    text: str
    sep: str  # joins it to the unit before: "\n\n" starts a block, " " or "\n" continues one
    tokens: int


@dataclass
class _Chunk:
    section: int
    heading: str
    units: list[_Unit]
    overlap: int = 0  # how many leading units repeat the end of the chunk before

    @property
    def tokens(self) -> int:
        return sum(u.tokens for u in self.units)

    @property
    def own_tokens(self) -> int:
        return sum(u.tokens for u in self.units[self.overlap :])

    def text(self) -> str:
        return "".join((u.sep if i else "") + u.text for i, u in enumerate(self.units))


def _sections(body: str, title: str) -> list[tuple[str, list[list[_Unit]]]]:
    """(heading path, blocks) in order; a level-1 heading repeating the title is left out."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    stack: list[tuple[int, str]] = []
    fenced = False
    for line in body.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if not match:
            sections[-1][1].append(line)
            continue
        level, text = len(match.group(1)), match.group(2).strip()
        stack = [(lv, t) for lv, t in stack if lv < level]
        if not (level == 1 and _same(text, title)):
            stack.append((level, text))
        sections.append((" > ".join(t for _, t in stack), []))
    out = []
    for heading, lines in sections:
        blocks = [b for b in _blocks(lines) if b]
        if blocks:
            out.append((heading, blocks))
    return out


def sections(body: str, title: str) -> list[tuple[str, str]]:
    """(heading path, text) of each section with text, in order: the sections chunks are cut
    from and labelled with (Chunk.heading is one of these paths), for a page that shows them."""
    return [
        (heading, "\n\n".join(_unit_text(block) for block in blocks))
        for heading, blocks in _sections(body, title)
    ]


def _unit_text(units: list[_Unit]) -> str:
    return "".join((u.sep if i else "") + u.text for i, u in enumerate(units))


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _blocks(lines: list[str]) -> list[list[_Unit]]:
    blocks, current, fenced = [], [], False
    for line in lines:
        if _FENCE.match(line):
            fenced = not fenced
        if not line.strip() and not fenced:
            blocks.append(current)
            current = []
        else:
            current.append(line)
    blocks.append(current)
    return [_units(block) for block in blocks if any(line.strip() for line in block)]


def _units(lines: list[str]) -> list[_Unit]:
    if _FENCE.match(lines[0]) or all("|" in line for line in lines):
        pieces = lines  # code and tables: a line is the unit, its layout kept
    elif any(_LIST_ITEM.match(line) for line in lines):
        pieces = _list_items(lines)
    else:
        return _sentences("\n".join(lines), "\n\n")
    return [_Unit(p, "\n" if i else "\n\n", count_tokens(p)) for i, p in enumerate(pieces)]


def _list_items(lines: list[str]) -> list[str]:
    """Top-level items, each with its continuation lines and nested items (an intro line too)."""
    indent = min(len(m.group(1)) for line in lines if (m := _LIST_ITEM.match(line)))
    items: list[list[str]] = []
    for line in lines:
        m = _LIST_ITEM.match(line)
        if not items or (m and len(m.group(1)) <= indent):
            items.append([line])
        else:
            items[-1].append(line)
    return ["\n".join(item) for item in items]


def _sentences(text: str, first_sep: str) -> list[_Unit]:
    units, start, sep = [], 0, first_sep
    for match in _SENTENCE_END.finditer(text):
        space = match.group(1) if match.group(1) is not None else match.group(2)
        end = match.start(1) if match.group(1) is not None else match.start(2)
        if end > start:
            units.append(_Unit(text[start:end], sep, count_tokens(text[start:end])))
            sep = "\n" if "\n" in space else " "
        start = match.end()
    if text[start:].strip():
        units.append(_Unit(text[start:], sep, count_tokens(text[start:])))
    return units


def _fit(unit: _Unit, target: int) -> list[_Unit]:
    """A unit longer than the budget alone, cut between words (or inside a giant one)."""
    if unit.tokens <= target:
        return [unit]
    out: list[_Unit] = []
    parts: list[str] = []
    size = 0
    for piece, glue in _pieces(unit.text, target):
        n = count_tokens(piece)
        if parts and size + n > target:
            out.append(_Unit("".join(parts), unit.sep if not out else " ", size))
            parts, size = [], 0
        parts.append((glue if parts else "") + piece)
        size += n
    if parts:
        out.append(_Unit("".join(parts), unit.sep if not out else " ", size))
    return out


def _pieces(text: str, target: int):
    """Words with the glue before them; a word over budget (a URL, minified code) in slices."""
    for i, word in enumerate(text.split()):
        glue = " " if i else ""
        if count_tokens(word) <= target:
            yield word, glue
            continue
        # A slice of n characters never counts more than n tokens.
        for start in range(0, len(word), target):
            yield word[start : start + target], glue if start == 0 else ""


# --- Packing ----------------------------------------------------------------------------------
def _split(
    body: str, title: str, target: int, overlap: int, min_tokens: int
) -> list[tuple[str, str]]:
    # Settings that contradict each other (a minimum above the target) would merge everything.
    target = max(target, 1)
    overlap, min_tokens = min(overlap, target // 2), min(min_tokens, target // 2)
    chunks: list[_Chunk] = []
    for index, (heading, blocks) in enumerate(_sections(body, title)):
        chunks.extend(_pack(index, heading, blocks, target, overlap))
    chunks = _merge_small(chunks, target, min_tokens)
    return [(c.heading, text) for c in chunks if (text := c.text().strip())]


def _pack(
    section: int, heading: str, blocks: list[list[_Unit]], target: int, overlap: int
) -> list[_Chunk]:
    done: list[_Chunk] = []
    current = _Chunk(section, heading, [])

    def flush() -> _Chunk:
        if current.own_tokens:
            done.append(current)
            return _Chunk(section, heading, *_tail(current.units, overlap))
        return current

    def make_room(needed: int) -> None:
        nonlocal current
        if current.tokens + needed > target:
            current = flush()
            if current.tokens + needed > target:
                current = _Chunk(section, heading, [])  # the overlap would not leave room

    for block in blocks:
        size = sum(u.tokens for u in block)
        if size <= target:
            # A block that fits in one chunk is never split: lists and tables stay whole.
            make_room(size)
            current.units.extend(block)
            continue
        for unit in (piece for u in block for piece in _fit(u, target)):
            make_room(unit.tokens)
            current.units.append(unit)
    flush()
    return done


def _tail(units: list[_Unit], budget: int) -> tuple[list[_Unit], int]:
    """The last sentences of a chunk, about budget tokens, to open the next one with."""
    picked: list[_Unit] = []
    for unit in reversed(units[1:]):
        # A whole closing sentence a little over budget reads better than a cut one.
        limit = budget if picked else budget * 3 // 2
        if sum(u.tokens for u in picked) + unit.tokens > limit:
            break
        picked.insert(0, unit)
    if not picked and budget > 0 and units:
        # One long closing sentence: carry its last words, marked as a fragment.
        words = units[-1].text.split()
        tail: list[str] = []
        while words and count_tokens(" ".join([words[-1], *tail])) <= budget - 1:
            tail.insert(0, words.pop())
        if tail and words:
            picked = [_Unit("…" + " ".join(tail), "", count_tokens(" ".join(tail)) + 1)]
    return picked, len(picked)


def _merge_small(chunks: list[_Chunk], target: int, min_tokens: int) -> list[_Chunk]:
    """Fold fragments under min_tokens into a neighbour, preferring their own section."""
    i = 0
    while i < len(chunks) and len(chunks) > 1:
        small = chunks[i]
        if small.own_tokens >= min_tokens:
            i += 1
            continue
        options = []  # (merged chunk, index it replaces two from, neighbour section)
        if i > 0:
            options.append((_combine(chunks[i - 1], small), i - 1, chunks[i - 1].section))
        if i + 1 < len(chunks):
            options.append((_combine(small, chunks[i + 1]), i, chunks[i + 1].section))
        # Its own section first, with a little slack; another section only within the target.
        options.sort(key=lambda o: o[2] != small.section)
        for merged, start, section in options:
            if merged.tokens <= (target + min_tokens if section == small.section else target):
                chunks[start : start + 2] = [merged]
                i = start
                break
        else:
            i += 1  # standing alone beats overflowing a neighbour
    return chunks


def _combine(first: _Chunk, second: _Chunk) -> _Chunk:
    """One chunk of two neighbours, labelled with the larger one's section."""
    main = first if first.own_tokens >= second.own_tokens else second
    units: list[_Unit] = []
    for part, skip in (
        (first, 0),
        (second, second.overlap if second.section == first.section else 0),
    ):
        body = part.units[skip:]
        if part.section != main.section and part.heading and body:
            # The other section's heading travels with its text so the passage still reads.
            label = part.heading.rsplit(" > ", 1)[-1]
            units.append(_Unit(label, "\n\n", count_tokens(label)))
            body = [_Unit(body[0].text, "\n", body[0].tokens), *body[1:]]
        elif body and units:
            body = [_Unit(body[0].text, body[0].sep or "\n\n", body[0].tokens), *body[1:]]
        units.extend(body)
    overlap = first.overlap if main is first or first.section == second.section else 0
    return _Chunk(main.section, main.heading, units, overlap)
