"""Refusing near out-of-scope requests: a home assistant that can turn the heater off but was
never taught to turn it on must not answer "turn the heater on" with "heater off"."""

import json

import pytest

from knowledge import intents, services
from knowledge.intents import intent_match
from knowledge.models import IntentModel
from knowledge.retrieval import embed_query
from knowledge.tests.conftest import INTENTS_JSON

pytestmark = pytest.mark.django_db


def _intent(tag, *patterns):
    return {"tag": tag, "patterns": list(patterns), "responses": [f"Done: {tag}."]}


SWITCH = {
    "on": [
        "turn on the {}",
        "turn the {} on",
        "switch on the {}",
        "switch the {} on",
        "{} on please",
        "can you turn on the {}",
        "put the {} on",
        "power on the {}",
    ],
    "off": [
        "turn off the {}",
        "turn the {} off",
        "switch off the {}",
        "switch the {} off",
        "{} off please",
        "can you turn off the {}",
        "shut the {} off",
        "power down the {}",
    ],
}
DEVICES = {
    "heater": ["heater", "heating", "radiator"],
    "lights": ["lights", "lamp", "living room light"],
    "fan": ["fan", "ceiling fan", "air fan"],
    "tv": ["tv", "television", "telly"],
}


def _switch(device, state):
    patterns = [t.format(name) for t in SWITCH[state] for name in DEVICES[device]]
    return _intent(f"{device}_{state}", *patterns)


# A home assistant written the way such bots are: phrasings from templates. Every device can be
# switched on and off, except the heater: only "off" was written.
HOME = {
    "intents": [
        _switch("heater", "off"),
        *(_switch(device, state) for device in ("lights", "fan", "tv") for state in ("on", "off")),
        _intent(
            "door_lock",
            "lock the front door",
            "lock the door please",
            "is the door locked? lock it",
            "secure the front door",
            "lock up the house",
            "bolt the door",
        ),
        _intent(
            "music_play",
            "play some music",
            "put on a song",
            "start the music",
            "play my playlist",
            "I want to listen to music",
            "play jazz in the kitchen",
        ),
        _intent(
            "weather",
            "what's the weather like",
            "will it rain today",
            "weather forecast for tomorrow",
            "is it cold outside",
            "do I need an umbrella",
            "how hot will it be this afternoon",
        ),
    ]
}


def _upload(bot, data, filename="home.json"):
    return services.source_upload(bot=bot, filename=filename, data=data, sync_now=True)


def _match(bot, text):
    return intent_match(bot=bot, text=text, vector=embed_query(bot, text))


def test_a_near_neighbour_of_a_served_intent_is_refused(acme_bot):
    _upload(acme_bot, json.dumps(HOME).encode())
    for request in (
        "turn the heater on please",
        "could you turn the heating on",
        "switch on the radiator please",
    ):
        found = _match(acme_bot, request)
        assert not found.accepted, f"{request!r} must not get the {found.tag!r} answer"
    for question, tag in [
        ("could you switch the lamp off", "lights_off"),
        ("please turn the heating off", "heater_off"),
        ("turn on the ceiling fan please", "fan_on"),
        ("lock the front door please", "door_lock"),
        ("will it rain today", "weather"),
    ]:
        found = _match(acme_bot, question)
        assert (found.tag, found.accepted) == (tag, True), question
        assert 0 <= found.margin <= found.probability <= 1


def test_the_calibration_is_stored_in_the_model_metrics(acme_bot):
    _upload(acme_bot, json.dumps(HOME).encode())
    model = IntentModel.objects.get(bot=acme_bot)
    metrics = model.metrics
    assert metrics["calibrated"] is True and metrics["method"] == "leave-intents-out"
    assert metrics["rounds"] >= 2 and metrics["intents"] == len(HOME["intents"])
    assert metrics["held_in"] > 0 and metrics["held_out"] > 0
    assert model.threshold == pytest.approx(metrics["cutoff"], abs=1e-4)
    assert 0 < metrics["self_accepted_correct"] <= 1
    assert 0 < metrics["self_near_oos_rejected"] <= 1


def test_a_bot_with_too_few_intents_keeps_the_in_scope_calibration(acme_bot):
    _upload(acme_bot, INTENTS_JSON, filename="intents.json")
    model = IntentModel.objects.get(bot=acme_bot)
    assert model.metrics["calibrated"] is True and "method" not in model.metrics
    found = _match(acme_bot, "when will my new card arrive")
    assert (found.tag, found.accepted) == ("card_arrival", True)
    assert not _match(acme_bot, "what's a good recipe for lasagne").accepted


def test_a_one_intent_bot_still_answers_its_intent(acme_bot):
    tiny = {"intents": [_intent("greeting", "hello", "hi there", "good morning")]}
    _upload(acme_bot, json.dumps(tiny).encode())
    assert IntentModel.objects.get(bot=acme_bot).metrics["calibrated"] is False
    found = _match(acme_bot, "hello there")
    assert (found.tag, found.accepted, found.margin) == ("greeting", True, 1.0)


def test_retraining_unchanged_patterns_is_a_no_op(acme_bot, monkeypatch):
    _upload(acme_bot, json.dumps(HOME).encode())
    before = IntentModel.objects.get(bot=acme_bot)

    def no_training(*args, **kwargs):
        raise AssertionError("unchanged patterns must not be trained again")

    monkeypatch.setattr(intents, "calibrate", no_training)
    monkeypatch.setattr(intents._Classifier, "fit", no_training)
    intents.intent_model_train(bot=acme_bot, model=acme_bot.embedding_model_active)
    after = IntentModel.objects.get(bot=acme_bot)
    assert (after.pk, after.checksum, after.threshold) == (
        before.pk,
        before.checksum,
        before.threshold,
    )
