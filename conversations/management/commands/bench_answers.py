"""python manage.py bench_answers [--dir ../shared/benchmarks] [--only covidfaq] [--limit N]:
the answer-level figure on every article set (conversations/answer_quality.py has the
definitions), after `bench`'s retrieval figures in `make bench`."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.test import override_settings

from conversations.answer_quality import evaluate_answers

COLUMNS = [
    "set",
    "n",
    "answered",
    "hedged",
    "not_answered",
    "from_correct_article",
    "contains_answer",
    "kept",
    "lead_recall_mean",
    "p50_ms",
    "p95_ms",
]


class Command(BaseCommand):
    help = "Ask every question of each article set through the pipeline (no LLM) and grade it."

    def add_arguments(self, parser):
        parser.add_argument("--dir", type=Path, default=Path("../shared/benchmarks"))
        parser.add_argument("--only", nargs="*", help="set names to run (default: all)")
        parser.add_argument("--limit", type=int, help="only the first N questions per set")

    def handle(self, *args, dir: Path, only, limit, **options):
        if not dir.is_dir():
            raise CommandError(f"No benchmark folder at {dir} (give --dir).")
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1.")
        rows = []
        for folder in sorted(p for p in dir.iterdir() if p.is_dir()):
            articles, questions = folder / "articles.jsonl", folder / "questions.jsonl"
            if (only and folder.name not in only) or not (
                articles.is_file() and questions.is_file()
            ):
                continue
            # The extractive answer is what is measured: the server's LLM settings, if any, must
            # not turn these turns into the LLM path.
            with override_settings(LLM_BASE_URL="", LLM_API_KEY=""):
                report = evaluate_answers(articles, questions, limit=limit)
            rows.append({"set": folder.name, **report})
            self.stderr.write(f"{folder.name}: {json.dumps(rows[-1])}")
        if not rows:
            raise CommandError(f"No article sets (articles.jsonl + questions.jsonl) in {dir}.")
        self.stdout.write(_table(rows))
        self.stdout.write(json.dumps(rows))


def _table(rows: list[dict]) -> str:
    cells = [[str(r.get(c, "")) if r.get(c) is not None else "" for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(COLUMNS)]

    def line(values):
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(COLUMNS), rule, *map(line, cells)])
