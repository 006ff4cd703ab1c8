"""Step 4: the relevance gate, calibrated per bot from its own knowledge."""

import pytest

from bots.models import Bot
from conversations.pipeline import gate
from conversations.pipeline.catalog import knowledge_version
from knowledge import services
from knowledge.retrieval import search
from knowledge.tests.conftest import FAQ_CSV, INTENTS_JSON

pytestmark = pytest.mark.django_db


def best_passage(bot, question: str) -> float:
    hits = [h for h in search(bot=bot, query=question, k=12) if h.kind != "pattern"]
    return hits[0].score if hits else 0.0  # only intent patterns came close


def test_calibration_lets_on_topic_questions_through_and_stops_the_rest(shop_bot):
    bars = gate.calibrate(shop_bot)

    assert bars.details["method"] == "neighbours"
    assert 0 < bars.weak < bars.strong < 1
    for question in ("how many days does delivery take", "I forgot my password"):
        assert best_passage(shop_bot, question) >= bars.strong, question
    for question in ("asdkjh qwpoe zzz", "what is the capital of France", "how do I bake bread"):
        assert best_passage(shop_bot, question) < bars.weak, question


def test_the_bars_come_from_each_bots_own_knowledge(shop_bot, globex_bot):
    services.source_upload(bot=globex_bot, filename="faq.csv", data=FAQ_CSV, sync_now=True)

    acme, globex = gate.calibrate(shop_bot), gate.calibrate(globex_bot)

    assert (acme.weak, acme.strong) != (globex.weak, globex.strong)
    assert acme.details["neighbours"]["n"] == 13  # 12 FAQ questions and the warranty article
    assert globex.details["neighbours"]["n"] == 4


def test_a_tiny_knowledge_base_is_calibrated_against_its_own_titles(globex_bot):
    data = b"question,answer\nHow do I reset my password?,Open Settings and choose Reset.\n"
    services.source_upload(bot=globex_bot, filename="faq.csv", data=data, sync_now=True)

    bars = gate.calibrate(globex_bot)

    assert bars.details["method"] == "few titles"
    assert bars.weak < bars.strong
    assert best_passage(globex_bot, "I forgot my password") >= bars.strong
    assert best_passage(globex_bot, "what is the capital of France") < bars.weak


def test_the_bars_are_made_when_the_knowledge_changes_not_on_a_customers_turn(
    shop_bot, monkeypatch, django_capture_on_commit_callbacks
):
    computed = []
    real_calibrate = gate.calibrate
    monkeypatch.setattr(gate, "calibrate", lambda bot: computed.append(bot) or real_calibrate(bot))
    before = knowledge_version(shop_bot)

    with django_capture_on_commit_callbacks(execute=True):
        services.source_upload(bot=shop_bot, filename="more.csv", data=FAQ_CSV, sync_now=True)

    assert len(computed) == 1  # by the sync, once it committed
    version = knowledge_version(shop_bot)
    assert version != before
    stored = Bot.objects.get(pk=shop_bot.pk).gate_calibration
    assert stored["version"] == list(version)
    gate._cache.clear()  # as in another serving process, which never calibrated this bot
    bars, ready = gate.calibration(shop_bot, version)
    assert ready and len(computed) == 1  # the turn computed nothing
    assert (bars.weak, bars.strong) == (stored["weak"], stored["strong"])


def test_a_turn_calibrates_when_no_stored_bars_match_and_stores_them(shop_bot):
    Bot.objects.filter(pk=shop_bot.pk).update(gate_calibration={})
    gate._cache.clear()
    version = knowledge_version(shop_bot)

    first, ready = gate.calibration(shop_bot, version)

    assert ready is False
    assert Bot.objects.get(pk=shop_bot.pk).gate_calibration["weak"] == first.weak
    assert gate.calibration(shop_bot, version) == (first, True)


def test_an_intent_only_bot_answers_its_intents_and_admits_the_rest(globex_bot, ask):
    services.source_upload(bot=globex_bot, filename="i.json", data=INTENTS_JSON, sync_now=True)

    _, matched = ask(globex_bot, "my card still has not arrived")
    _, unmatched = ask(globex_bot, "can I open a savings account?")

    assert matched["trace"]["gate"]["decision"] == "intent"
    answer = "Cards arrive within 5 working days of ordering.\n\nSource: Card arrival"
    assert matched["text"] == answer
    assert unmatched["trace"]["gate"]["decision"] == "none"
    # The intent classifier's nearest intent was not good enough, and no passage qualified.
    assert unmatched["trace"]["intent"]["accepted"] is False
    assert unmatched["trace"]["category"] == "out_of_scope"
    assert unmatched["outcome"] == "handoff_proposed" and unmatched["extras"]["offer_human"]


def test_the_gate_records_its_bars_and_decision(shop_bot, ask):
    _, final = ask(shop_bot, "Which payment methods do you accept?")

    record = final["trace"]["gate"]
    assert record["decision"] == "strong"
    assert record["score"] >= record["strong"] > record["weak"]
    assert record["chunk_id"] == final["citations"][0]["chunk_id"]
    calibration = record["calibration"]
    assert calibration["noise"]["n"] == 30
    assert {"method", "neighbours", "own", "ms", "cached"} <= set(calibration)
