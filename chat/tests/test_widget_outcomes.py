"""The widget's `confirm` frame ("Did that answer your question?") against
docs/chat-protocol.md: Yes and No, bad frames, another conversation's or another bot's answer,
and the request limits. Yes and the rating are in test_consumers.test_feedback_and_rating."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from bots.models import Bot
from chat.tests import fixtures_rt
from chat.tests.test_consumers import SHOP, _completed, _connect, _socket, _until
from conversations.models import Conversation, Message
from conversations.tests.factories import ConversationFactory, MessageFactory

fresh_rate_limits = fixtures_rt.fresh_rate_limits
scripted = fixtures_rt.scripted

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fresh_rate_limits"),
]


@pytest.fixture
def shop_bot(acme_bot):
    acme_bot.allowed_origins = [SHOP]
    acme_bot.save(update_fields=["allowed_origins"])
    return acme_bot


async def _answered(bot):
    """Carla's socket, after the bot answered her question: (socket, conversation id, answer)."""
    ws, _ready = await _connect(bot)
    await ws.send_json_to({"type": "message", "text": "Shipping?"})
    answer = (await _until(ws, _completed))[-1]["message"]
    assert answer["extras"]["ask_answered"] is True
    return ws, answer["conversation_id"], answer


async def _conversation(pk) -> Conversation:
    return await database_sync_to_async(Conversation.objects.get)(pk=pk)


async def test_no_offers_a_person_and_keeps_the_bot(shop_bot, scripted, carla):
    ws, conversation_id, answer = await _answered(shop_bot)
    await ws.send_json_to({"type": "confirm", "message_id": answer["id"], "answered": False})
    frames = await _until(ws, lambda f: f["type"] == "message.created")
    assert frames[0]["message"]["id"] == answer["id"]
    assert frames[0]["message"]["outcome"] == "answered"
    offer = frames[-1]["message"]
    assert offer["sender"] == "system" and offer["extras"] == {"offer_human": True}
    conversation = await _conversation(conversation_id)
    assert conversation.status == "awaiting_customer" and conversation.resolution == ""
    await ws.disconnect()


async def test_no_hands_off_when_the_bot_says_so(shop_bot, scripted, carla):
    await database_sync_to_async(Bot.objects.filter(pk=shop_bot.pk).update)(not_answered="handoff")
    ws, conversation_id, answer = await _answered(shop_bot)
    await ws.send_json_to({"type": "confirm", "message_id": answer["id"], "answered": False})
    updated = (await _until(ws, lambda f: f["type"] == "conversation.updated"))[-1]
    assert updated["conversation"]["status"] == "waiting"
    await ws.disconnect()


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "confirm", "answered": True},
        {"type": "confirm", "message_id": "12", "answered": True},
        {"type": "confirm", "message_id": 12, "answered": "yes"},
        {"type": "confirm", "message_id": 12},
    ],
)
async def test_a_malformed_confirm_is_a_bad_frame(shop_bot, scripted, carla, frame):
    ws, conversation_id, _answer = await _answered(shop_bot)
    await ws.send_json_to(frame)
    error = await ws.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == "bad_frame"
    assert (await _conversation(conversation_id)).status == "awaiting_customer"
    await ws.disconnect()


async def test_confirm_before_any_conversation_is_refused(shop_bot):
    ws, ready = await _connect(shop_bot)
    assert ready["conversation"] is None
    await ws.send_json_to({"type": "confirm", "message_id": 1, "answered": True})
    error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "not_allowed"
    await ws.disconnect()


async def test_another_customers_answer_cannot_be_confirmed(shop_bot, scripted, carla, dan):
    theirs = await database_sync_to_async(ConversationFactory)(
        customer=dan, status="awaiting_customer"
    )
    their_answer = await database_sync_to_async(MessageFactory)(
        conversation=theirs, sender="ai", text="Yes.", outcome="answered"
    )
    ws, _conversation_id, _answer = await _answered(shop_bot)
    await ws.send_json_to({"type": "confirm", "message_id": their_answer.pk, "answered": True})
    error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "not_allowed"
    theirs = await _conversation(theirs.pk)
    assert theirs.status == "awaiting_customer" and theirs.resolution == ""
    await ws.disconnect()


async def test_another_bots_widget_cannot_resolve_acmes_conversation(
    shop_bot, globex_bot, scripted, carla
):
    ws, conversation_id, answer = await _answered(shop_bot)
    await ws.disconnect()
    globex_bot.allowed_origins = [SHOP]
    await database_sync_to_async(globex_bot.save)(update_fields=["allowed_origins"])
    olga = _socket(globex_bot.public_key)
    assert (await olga.connect())[0]
    # Carla's visitor id and conversation, on Globex's widget: not hers there.
    hello = {"type": "hello", "visitor_id": "carla-browser-1", "conversation_id": conversation_id}
    await olga.send_json_to(hello)
    ready = await olga.receive_json_from(timeout=5)
    assert ready["conversation"] is None
    await olga.send_json_to({"type": "confirm", "message_id": answer["id"], "answered": True})
    assert (await olga.receive_json_from(timeout=5))["code"] == "not_allowed"
    await olga.send_json_to({"type": "rate", "score": 1})
    assert (await olga.receive_json_from(timeout=5))["code"] == "bad_frame"
    conversation = await _conversation(conversation_id)
    assert (conversation.status, conversation.csat) == ("awaiting_customer", None)
    confirmed = await database_sync_to_async(
        Message.objects.filter(pk=answer["id"]).values_list("confirmed", flat=True).get
    )()
    assert confirmed is None
    await olga.disconnect()


async def test_confirm_frames_count_against_the_request_limit(shop_bot, scripted, carla, settings):
    settings.CHAT_RATE_PER_VISITOR = 2
    ws, _conversation_id, answer = await _answered(shop_bot)
    for _ in range(2):
        await ws.send_json_to({"type": "confirm", "message_id": 999999, "answered": True})
        assert (await ws.receive_json_from(timeout=5))["code"] == "not_allowed"
    await ws.send_json_to({"type": "confirm", "message_id": answer["id"], "answered": True})
    error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "rate_limited"
    assert (await _conversation(answer["conversation_id"])).status == "awaiting_customer"
    await ws.disconnect()
