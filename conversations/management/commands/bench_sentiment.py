"""python manage.py bench_sentiment [--split test]: plain VADER against VADER with the support
layer (conversations/sentiment.py) on a labelled sample of customer tweets to airlines
(conversations/data/airline_tweets_sample.csv, its source and licence in SOURCE.md).

The sample was split in two halves, fixed in its `split` column, before anything was scored:
the layer was written from support knowledge and looked at on `dev` only; `test` is the
held-out half the README quotes. Scores become labels at VADER's own cut (compound <= -0.05
negative, >= 0.05 positive), the same cut the assessment uses for "negative".
"""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from conversations.sentiment import sentiment_score

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "airline_tweets_sample.csv"
LABELS = ("negative", "neutral", "positive")
CUT = 0.05


# The tweets open with the airline's @handle, which no chat message has, and VADER reads
# "@united" as the word "united" (+1.8): every United tweet would start a little happy. Both
# scorers get the text without handles.
HANDLE = re.compile(r"@\w+")


def load_sample(path: Path = SAMPLE, *, split: str = "test") -> list[tuple[str, str]]:
    """(text, label) rows of one half, or of both with split="all"; @handles removed."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if split != "all":
        rows = [row for row in rows if row["split"] == split]
    return [(HANDLE.sub("", row["text"]).strip(), row["sentiment"]) for row in rows]


def label_of(score: float) -> str:
    if score <= -CUT:
        return "negative"
    if score >= CUT:
        return "positive"
    return "neutral"


def f1_by_label(gold: list[str], predicted: list[str], labels) -> dict[str, float]:
    scores = {}
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, predicted, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, predicted, strict=True))
        scores[label] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return scores


def evaluate(rows: list[tuple[str, str]], score) -> dict[str, float]:
    """Accuracy and macro-F1, negative vs not and 3-way; negative recall and precision (what
    the queue's priority cares about); and microseconds per message."""
    started = time.perf_counter()
    predicted = [label_of(score(text)) for text, _ in rows]
    elapsed = time.perf_counter() - started
    gold = [label for _, label in rows]
    n = len(rows)
    gold_neg = ["negative" if g == "negative" else "not" for g in gold]
    pred_neg = ["negative" if p == "negative" else "not" for p in predicted]
    tp = sum(g == p == "negative" for g, p in zip(gold_neg, pred_neg, strict=True))
    binary = f1_by_label(gold_neg, pred_neg, ("negative", "not"))
    three = f1_by_label(gold, predicted, LABELS)
    return {
        "n": n,
        "neg_accuracy": sum(g == p for g, p in zip(gold_neg, pred_neg, strict=True)) / n,
        "neg_macro_f1": sum(binary.values()) / 2,
        "neg_recall": tp / max(1, gold_neg.count("negative")),
        "neg_precision": tp / max(1, pred_neg.count("negative")),
        "accuracy_3way": sum(g == p for g, p in zip(gold, predicted, strict=True)) / n,
        "macro_f1_3way": sum(three.values()) / 3,
        "us_per_message": elapsed / n * 1e6,
    }


class Command(BaseCommand):
    help = "Plain VADER vs VADER + the support layer on a labelled sample of customer tweets."

    def add_arguments(self, parser):
        parser.add_argument("--split", choices=("test", "dev", "all"), default="test")
        parser.add_argument("--sample", type=Path, default=SAMPLE)

    def handle(self, *args, split: str, sample: Path, **options):
        if not sample.is_file():
            raise CommandError(f"No labelled sample at {sample}.")
        rows = load_sample(sample, split=split)
        if not rows:
            raise CommandError(f"No rows in the {split!r} half of {sample}.")
        plain = SentimentIntensityAnalyzer()
        scorers = {
            "vader": lambda text: plain.polarity_scores(text)["compound"],
            "vader+support": sentiment_score,
        }
        sentiment_score("warm-up")  # the lexicon loads once per process, not in the timing
        self.stdout.write(f"sentiment: {sample.name}, {split} half, {len(rows)} messages")
        columns = None
        negative = {}
        for name, score in scorers.items():
            negative[name] = [label_of(score(text)) == "negative" for text, _ in rows]
            report = evaluate(rows, score)
            if columns is None:
                columns = list(report)
                self.stdout.write("  ".join(["scorer".ljust(14), *columns]))
            cells = [
                str(value) if isinstance(value, int) else f"{value:.3f}"
                for value in report.values()
            ]
            self.stdout.write("  ".join([name.ljust(14), *cells]))
        # Paired, message by message: how many negative-vs-not calls the layer turned right
        # and how many it turned wrong (a difference of a few messages is noise at this size).
        gold = [label == "negative" for _, label in rows]
        before, after = negative["vader"], negative["vader+support"]
        fixed = sum(b != g and a == g for b, a, g in zip(before, after, gold, strict=True))
        broke = sum(b == g and a != g for b, a, g in zip(before, after, gold, strict=True))
        self.stdout.write(
            f"negative vs not, the layer against plain VADER: {fixed} messages "
            f"turned right, {broke} turned wrong"
        )
