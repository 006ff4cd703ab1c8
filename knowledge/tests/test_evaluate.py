"""`manage.py evaluate` and `manage.py bench`: the figures come from the real product path, and
with --json the last line is one JSON object with the keys the issue names."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from bots.models import Bot
from knowledge.tests.conftest import FAQ_ROWS, INTENTS_JSON

pytestmark = pytest.mark.django_db

QUERIES = [
    {"text": "my card has not arrived yet", "expected": "card_arrival"},
    {"text": "somebody stole my card", "expected": "lost_card"},
    {"text": "what is the euro to dollar rate", "expected": "exchange_rate"},
    {"text": "what is the capital of Peru", "expected": None},
    {"text": "recommend a good pizza recipe", "expected": None},
]


def _jsonl(rows) -> str:
    return "\n".join(json.dumps(r) for r in rows) + "\n"


@pytest.fixture
def intent_set(tmp_path):
    (tmp_path / "intents.json").write_bytes(INTENTS_JSON)
    (tmp_path / "queries.jsonl").write_text(_jsonl(QUERIES))
    return tmp_path


@pytest.fixture
def article_set(tmp_path):
    articles = [
        {"id": f"a{i}", "title": q, "body": a, "url": f"https://help.example/{i}"}
        for i, (q, a, _c) in enumerate(FAQ_ROWS)
    ]
    questions = [
        {"question": "how many days until my order arrives", "article_ids": ["a0"]},
        {"question": "I forgot my password", "article_ids": ["a2"]},
    ]
    (tmp_path / "articles.jsonl").write_text(_jsonl(articles))
    (tmp_path / "questions.jsonl").write_text(_jsonl(questions))
    return tmp_path


def _run(*args) -> tuple[str, dict]:
    out = StringIO()
    call_command("evaluate", *args, "--json", stdout=out)
    text = out.getvalue()
    return text, json.loads(text.strip().splitlines()[-1])


def test_intents_report_accuracy_out_of_scope_and_latency(intent_set):
    _text, report = _run(
        "--intents", intent_set / "intents.json", "--queries", intent_set / "queries.jsonl"
    )
    assert report["n"] == 5
    for key in ("top1_accuracy", "accepted_correct", "oos_recall", "p50_ms", "p95_ms"):
        assert 0 <= report[key] <= (1 if "ms" not in key else 10_000), key
    assert report["top1_accuracy"] == 1.0, "three plain paraphrases of taught intents"
    assert report["threshold"] > 0, "calibrated from the bot's own patterns"
    assert not Bot.objects.exists(), "the throw-away bot is gone"


def test_holding_out_intents_makes_their_queries_near_out_of_scope(intent_set):
    _text, report = _run(
        "--intents",
        intent_set / "intents.json",
        "--queries",
        intent_set / "queries.jsonl",
        "--hold-out-intents",
        "0.3",
        "--seed",
        "1",
    )
    # One of the three intents is removed from the upload; its one query must now be refused.
    assert report["held_out_intents"] == 1 and report["near_oos"] == 1
    assert 0 <= report["near_oos_recall"] <= 1
    assert report["n"] == 5 and 0 <= report["oos_recall"] <= 1


def test_a_hold_out_share_outside_0_and_1_is_a_clear_error(intent_set):
    with pytest.raises(CommandError, match="between 0 and 1"):
        _run(
            "--intents",
            intent_set / "intents.json",
            "--queries",
            intent_set / "queries.jsonl",
            "--hold-out-intents",
            "1.5",
        )


def test_articles_report_hits_and_mrr_per_mode(article_set):
    text, report = _run(
        "--articles",
        article_set / "articles.jsonl",
        "--questions",
        article_set / "questions.jsonl",
        "--compare-dense",
    )
    assert report["n"] == 2
    assert report["hit_at_1"] == 1.0 and report["mrr"] == 1.0
    assert set(report["by_mode"]) == {"base", "dense", "hybrid"}
    assert report["chunks"] == len(FAQ_ROWS) and report["chunks_per_s"] > 0
    assert "by_mode" in text.splitlines()[-2]


def test_missing_files_are_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="--articles: no such file"):
        call_command(
            "evaluate", "--articles", tmp_path / "nope.jsonl", "--questions", tmp_path / "q"
        )


def test_bench_prints_one_table_for_every_set(intent_set, tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "tiny-intents").symlink_to(intent_set)
    out = StringIO()
    call_command("bench", "--dir", bench, stdout=out, stderr=StringIO())
    table = out.getvalue()
    assert "| set " in table and "tiny-intents" in table
    assert "near-oos" in table, "the held-out-intents simulation row"
