"""python manage.py evaluate --intents FILE --queries FILE [--hold-out-intents 0.2] [--json]
python manage.py evaluate --articles FILE --questions FILE [--json]"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from knowledge.evaluation import evaluate_articles, evaluate_intents
from knowledge.parsers import ParseError


class Command(BaseCommand):
    help = "Measure intent matching or article retrieval on labelled data (throw-away bot)."

    def add_arguments(self, parser):
        parser.add_argument("--intents", type=Path, help="intent file (JSON or YAML)")
        parser.add_argument("--queries", type=Path, help='JSONL: {"text", "expected"}')
        parser.add_argument("--articles", type=Path, help='JSONL: {"id","title","body","url"}')
        parser.add_argument("--questions", type=Path, help='JSONL: {"question","article_ids"}')
        parser.add_argument("--limit", type=int, help="only the first N queries")
        parser.add_argument(
            "--hold-out-intents",
            type=float,
            default=0.0,
            metavar="FRACTION",
            help="intents: remove this share of intents (seeded); their queries must be refused",
        )
        parser.add_argument("--seed", type=int, default=0, help="which intents are held out")
        parser.add_argument(
            "--compare-dense",
            action="store_true",
            help="articles: also measure the base model alone and dense without keywords",
        )
        parser.add_argument("--json", action="store_true", help="end with one JSON line")

    def handle(self, *args, **o):
        for name in ("intents", "queries", "articles", "questions"):
            if o[name] is not None and not o[name].is_file():
                raise CommandError(f"--{name}: no such file: {o[name]}")
        try:
            if o["intents"] and o["queries"]:
                report = evaluate_intents(
                    o["intents"],
                    o["queries"],
                    limit=o["limit"],
                    hold_out=o["hold_out_intents"],
                    seed=o["seed"],
                )
            elif o["articles"] and o["questions"]:
                modes = ("base", "dense", "hybrid") if o["compare_dense"] else ("hybrid",)
                report = evaluate_articles(
                    o["articles"], o["questions"], limit=o["limit"], modes=modes
                )
            else:
                raise CommandError("Give --intents with --queries, or --articles with --questions.")
        except (ParseError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for key, value in report.items():
            if not isinstance(value, dict):
                self.stdout.write(f"{key:>18}: {value}")
        for key in ("calibration", "by_mode"):
            if key in report:
                self.stdout.write(f"{key:>18}: {json.dumps(report[key])}")
        if o["json"]:
            self.stdout.write(json.dumps(report))
