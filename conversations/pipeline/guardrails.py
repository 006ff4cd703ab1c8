"""Step 6: checks on every piece of text before it reaches the customer.

A Guard checks one sentence at a time (an LLM answer is held back sentence by sentence, so
nothing unchecked ever ships) or a whole extractive answer at once:

(a) citations: every [n] must name one of the n sources the answer was given. A marker naming
    anything else is dropped, and recorded; what counts as a grounded answer is decided by the
    caller from the valid markers that remain (generate.py).
(b) redaction: e-mail addresses, card numbers (13-19 digits, Luhn-valid, spaces or dashes
    allowed), IBANs (mod-97 valid) and long account numbers become "[redacted]" unless they
    appear in what the customer wrote (their own data may be repeated back to them) or in the
    sources (the company's published contact details are not a leak).
(c) forbidden phrases: the bot's own list, compared case-insensitively with whitespace
    normalised. A match blocks the answer: the caller hands the conversation to a person
    instead, and the blocked sentence never ships. The check also spans the end of the text
    checked before, so a phrase split across a sentence boundary is still caught.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

REDACTED = "[redacted]"
CITATION = re.compile(r"(\s?)\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}(?![\w-])", re.I)
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
ACCOUNT = re.compile(r"(?<![\d])\d{10,34}(?![\d])")
TAIL = 300  # characters of earlier text a forbidden phrase may straddle


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def iban_valid(value: str) -> bool:
    value = value.replace(" ", "").upper()
    if not 15 <= len(value) <= 34:
        return False
    rearranged = value[4:] + value[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").casefold()
    return re.sub(r"\s+", " ", text)


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _known_values(texts: list[str]) -> set[str]:
    """Everything redaction might catch in these texts, in comparable form."""
    known: set[str] = set()
    for text in texts:
        known.update(m.group(0).lower() for m in EMAIL.finditer(text))
        known.update(_digits(m.group(0)) for m in CARD.finditer(text))
        known.update(m.group(0).replace(" ", "").upper() for m in IBAN.finditer(text))
        known.update(m.group(0) for m in ACCOUNT.finditer(text))
    return known


@dataclass
class Verdict:
    text: str
    blocked: bool = False


@dataclass
class Guard:
    forbidden: list[str]
    allowed_from: list[str]  # the customer's messages and the sources
    sources: int = 0  # how many sources [1]..[n] the answer was given
    cited: list[int] = field(default_factory=list)  # valid markers, in order of first use
    dropped: list[int] = field(default_factory=list)
    redactions: list[str] = field(default_factory=list)  # kinds: email, card, iban, account
    blocked_phrase: str = ""
    _tail: str = ""

    def __post_init__(self):
        self._phrases = [p for p in (normalise(f).strip() for f in self.forbidden) if p]
        self._allowed = _known_values(self.allowed_from)

    def check(self, text: str) -> Verdict:
        window = normalise(self._tail + text)
        phrase = next((p for p in self._phrases if p in window), None)
        if phrase is not None:
            self.blocked_phrase = phrase
            return Verdict("", blocked=True)
        self._tail = (self._tail + text)[-TAIL:]
        return Verdict(self._redact(self._citations(text)))

    def restart(self) -> None:
        """The next text replaces what was checked so far (a fallback answer), rather than
        following it: no phrase can straddle the two."""
        self._tail = ""

    def _citations(self, text: str) -> str:
        def fix(match: re.Match) -> str:
            numbers = [int(n) for n in re.findall(r"\d+", match.group(2))]
            valid = [n for n in numbers if 1 <= n <= self.sources]
            self.dropped.extend(n for n in numbers if n not in valid)
            self.cited.extend(n for n in dict.fromkeys(valid) if n not in self.cited)
            if not valid:
                return ""
            return match.group(1) + "[" + ", ".join(str(n) for n in valid) + "]"

        return CITATION.sub(fix, text)

    def _redact(self, text: str) -> str:
        def replace(kind, value, ok=True) -> str | None:
            if not ok or value in self._allowed:
                return None
            self.redactions.append(kind)
            return REDACTED

        text = EMAIL.sub(lambda m: replace("email", m.group(0).lower()) or m.group(0), text)
        text = CARD.sub(
            lambda m: (
                replace("card", _digits(m.group(0)), luhn_valid(_digits(m.group(0)))) or m.group(0)
            ),
            text,
        )
        text = IBAN.sub(
            lambda m: (
                replace("iban", m.group(0).replace(" ", "").upper(), iban_valid(m.group(0)))
                or m.group(0)
            ),
            text,
        )
        return ACCOUNT.sub(lambda m: replace("account", m.group(0)) or m.group(0), text)

    def record(self) -> dict:
        return {
            "dropped_citations": self.dropped,
            "redactions": self.redactions,
            "blocked": bool(self.blocked_phrase),
            "forbidden_phrase": self.blocked_phrase,
        }


def cited_numbers(text: str) -> list[int]:
    """The [n] markers in a text, in order of first appearance."""
    numbers = [int(n) for m in CITATION.finditer(text) for n in re.findall(r"\d+", m.group(2))]
    return list(dict.fromkeys(numbers))
