"""python manage.py bench [--dir ../shared/benchmarks]: every set, one table (`make bench`)."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from knowledge.evaluation import evaluate_articles, evaluate_intents

# The near out-of-scope simulation: this share of each intent set's intents is held out (fixed
# seed) and their queries must be refused while their neighbours stay served.
NEAR_OOS_SHARE = 0.2
NEAR_OOS_SEED = 0

COLUMNS = [
    "set",
    "mode",
    "n",
    "top1_accuracy",
    "accepted_correct",
    "oos_recall",
    "oos_precision",
    "near_oos_recall",
    "hit_at_1",
    "hit_at_5",
    "mrr",
    "p50_ms",
    "p95_ms",
    "chunks",
    "chunks_per_s",
    "adapter_s",
    "choice",
    "self_hit_at_1",
    "self_mrr",
]


class Command(BaseCommand):
    help = "Run `evaluate` on every benchmark set in a folder and print a table."

    def add_arguments(self, parser):
        parser.add_argument("--dir", type=Path, default=Path("../shared/benchmarks"))
        parser.add_argument("--only", nargs="*", help="set names to run (default: all)")
        parser.add_argument("--limit", type=int, help="only the first N queries per set")

    def handle(self, *args, dir: Path, only, limit, **options):
        if not dir.is_dir():
            raise CommandError(f"No benchmark folder at {dir} (give --dir).")
        rows = []
        for folder in sorted(p for p in dir.iterdir() if p.is_dir()):
            if only and folder.name not in only:
                continue
            if (folder / "intents.json").is_file() and (folder / "queries.jsonl").is_file():
                report = evaluate_intents(
                    folder / "intents.json", folder / "queries.jsonl", limit=limit
                )
                rows.append({"set": folder.name, "mode": "intents", **report})
                self.stderr.write(f"{folder.name}: {json.dumps(rows[-1])}")
                report = evaluate_intents(
                    folder / "intents.json",
                    folder / "queries.jsonl",
                    limit=limit,
                    hold_out=NEAR_OOS_SHARE,
                    seed=NEAR_OOS_SEED,
                )
                rows.append({"set": folder.name, "mode": "near-oos", **report})
            elif (folder / "articles.jsonl").is_file() and (folder / "questions.jsonl").is_file():
                report = evaluate_articles(
                    folder / "articles.jsonl",
                    folder / "questions.jsonl",
                    limit=limit,
                    modes=("base", "dense", "bm25", "fts", "rrf", "hybrid"),
                )
                report.pop("self_candidates", None)  # per candidate: in `evaluate`'s JSON
                for mode, run in report.pop("by_mode").items():
                    rows.append({"set": folder.name, "mode": mode, **report, **run})
            else:
                continue
            self.stderr.write(f"{folder.name}: {json.dumps(rows[-1])}")
        if not rows:
            raise CommandError(f"No benchmark sets found in {dir}.")
        self.stdout.write(_table(rows))
        self.stdout.write(json.dumps(rows))


def _table(rows: list[dict]) -> str:
    cells = [[str(r.get(c, "")) if r.get(c) is not None else "" for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(COLUMNS)]

    def line(values):
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(COLUMNS), rule, *map(line, cells)])
