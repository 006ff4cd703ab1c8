"""Actions through the chat: the runner keeps a turn's calls (the question for a missing argument
lives on to the next turn), pushes `tool_call` events, hands an over-the-limit request to people
with its details; the confirmation card's Confirm and Cancel (chat.services.action_confirm, the
socket's `action_confirm` frame, the API's endpoint) move a call on once, in its own
conversation only."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.urls import reverse
from django.utils import timezone

from actions.demo import DEMO_CUSTOMER
from actions.signing import signature_valid
from chat import recovery, runner
from chat import services as chat_services
from chat.tests import fixtures_rt
from chat.tests.test_api import _chat
from chat.tests.test_consumers import SHOP, _connect, _until
from conversations import services
from conversations.models import ActionCall, Conversation, Message
from conversations.pipeline.actions import CANCELLED_TEXT, CANT_CHECK
from conversations.tests.factories import ConversationFactory
from conversations.tests.pipeline.conftest import load_demo_knowledge
from conversations.tests.shop_server import ShopServer, order_action, refund_action
from escalation.models import EscalationLog

fresh_rate_limits = fixtures_rt.fresh_rate_limits

SHIPPED = "Order 1234 is shipped, arriving Tuesday 9 December."
REFUNDED = "Refund of $20.00 started for order 1234."


@pytest.fixture
def shop(settings):
    settings.ACTIONS_ALLOW_PRIVATE_NETWORKS = True  # the stand-in business is on 127.0.0.1
    server = ShopServer()
    yield server
    server.stop()


@pytest.fixture
def verachat(vera):
    return ConversationFactory(customer=vera)


@pytest.fixture
def card(verachat, shop):
    """A confirmation card the bot showed Vera: "Refund $20 for order 1234", waiting."""
    return _card(verachat, refund_action(bot=verachat.bot, base_url=shop.url))


def _card(conversation, refund, amount=20) -> ActionCall:
    asked, _ = services.message_add_user(
        conversation=conversation, text=f"Refund ${amount} on order 1234"
    )
    bot_message = services.message_start_bot(conversation=conversation, reply_to=asked)
    [call] = services.action_calls_save(
        conversation=conversation,
        message=bot_message,
        calls=[
            {
                "action_id": refund.pk,
                "name": refund.name,
                "arguments": {"order_id": "1234", "amount": amount},
                "state": "pending_confirmation",
                "outcome": "needs_confirmation",
                "confirmation": f"Refund ${amount} for order 1234",
            }
        ],
    )
    services.message_complete(
        message=bot_message,
        text=f"Refund ${amount} for order 1234",
        outcome="answered",
        extras={"action_confirm": {"call_id": call.pk, "text": call.confirmation}},
    )
    return call


def _bot_texts(conversation) -> list[str]:
    return list(
        conversation.messages.filter(sender=Message.Sender.AI)
        .order_by("id")
        .values_list("text", flat=True)
    )


# --- The runner -----------------------------------------------------------------------
@pytest.mark.django_db
def test_the_question_for_an_argument_is_answered_in_the_next_turn(verachat, shop, broadcasts):
    load_demo_knowledge(verachat.bot)
    order_action(bot=verachat.bot, base_url=shop.url)

    first, _ = services.message_add_user(conversation=verachat, text="Where is my order?")
    list(runner.turn_run(message=first))
    [asking] = ActionCall.objects.filter(conversation=verachat)
    assert (asking.state, asking.asked_for) == ("asking", "order_id")
    asked = Message.objects.get(pk=asking.message_id)
    assert asked.text == "What's your order number?"
    assert "ask_answered" not in asked.extras, "a question is not asked if it answered"

    second, _ = services.message_add_user(conversation=verachat, text="1234")
    events = list(runner.turn_run(message=second))

    assert _bot_texts(verachat)[-1] == SHIPPED
    asking.refresh_from_db()
    assert asking.state == "dropped", "answered by the call that ran"
    ran = ActionCall.objects.filter(conversation=verachat).exclude(pk=asking.pk).get()
    assert (ran.state, ran.outcome, ran.arguments) == ("done", "ok", {"order_id": "1234"})
    # The API's stream and the socket's group both hear the call: progress, then outcome.
    streamed = [e for e in events if e["type"] == "tool_call"]
    assert [e["state"] for e in streamed] == ["running", "done"]
    assert streamed[0]["progress"] == "Checking your order…"
    pushed = [p for _, event, p in broadcasts if event == "tool_call"]
    assert [p["outcome"] for p in pushed if p["state"] == "done"] == ["ok"]
    assert shop.url not in json.dumps(pushed + streamed)


@pytest.mark.django_db
def test_a_refund_over_the_limit_is_handed_to_people_with_its_details(verachat, shop):
    load_demo_knowledge(verachat.bot)
    refund = refund_action(bot=verachat.bot, base_url=shop.url)
    refund.intent = "order_status"  # bound for this test: the demo intents have no refunds
    refund.save(update_fields=["intent"])

    message, _ = services.message_add_user(
        conversation=verachat, text="Where is my order 1235? refund $80"
    )
    events = list(runner.turn_run(message=message))

    verachat.refresh_from_db()
    assert verachat.status == Conversation.Status.WAITING
    [log] = EscalationLog.objects.filter(conversation=verachat)
    assert log.trigger == "action"
    assert log.package["action"]["name"] == "start_refund"
    assert log.package["action"]["arguments"] == {"order_id": "1235", "amount": 80}
    assert re.search(r"above the .*50\.00", log.package["action"]["reason"])
    assert any(e["type"] == "escalation_confirmed" for e in events)
    assert shop.requests == [], "over the limit, the business is never called"


class _Crash(BaseException):
    """The process dying: not an Exception, so the turn cannot catch it and fail the answer."""


@pytest.mark.django_db
def test_a_turn_retried_after_a_crash_sends_its_call_with_the_same_key(verachat, shop, monkeypatch):
    """The worst moment to die: the refund (no card) was sent and answered, nothing of it
    stored yet. The recovery sweep answers the message again and the refund is sent again, but
    with the same key, so the business starts it once."""
    load_demo_knowledge(verachat.bot)
    refund_action(
        bot=verachat.bot,
        base_url=shop.url,
        requires_confirmation=False,
        intent="order_status",  # bound for this test: the demo intents have no refunds
    )
    message, _ = services.message_add_user(
        conversation=verachat, text="Where is my order 1235? refund $20"
    )
    save = services.action_calls_save
    crashes = iter([True])

    def dies_once(**kwargs):
        if next(crashes, False):
            raise _Crash
        return save(**kwargs)

    monkeypatch.setattr(services, "action_calls_save", dies_once)
    with pytest.raises(_Crash):
        list(runner.turn_run(message=message))
    [cut_off] = verachat.messages.filter(sender=Message.Sender.AI)
    assert cut_off.state == Message.State.PENDING
    before = timezone.now() - timedelta(minutes=10)
    Message.objects.filter(pk=cut_off.pk).update(created_at=before, updated_at=before)

    assert recovery.turn_recover()["retried"] == 1

    assert _bot_texts(verachat)[-1] == "Refund of $20.00 started for order 1235."
    keys = [r["headers"].get("Idempotency-Key") for r in shop.requests]
    assert keys == [f"msg-{message.pk}-start_refund-1"] * 2


# --- Confirm and Cancel -----------------------------------------------------------------------
@pytest.mark.django_db
def test_confirm_runs_the_call_once_and_posts_its_result(card, shop, broadcasts):
    reply = chat_services.action_confirm(
        conversation=card.conversation, call_id=card.pk, confirmed=True
    )

    assert reply.text == REFUNDED and reply.outcome == "answered"
    [request] = shop.requests
    assert request["method"] == "POST" and json.loads(request["body"]) == {
        "order_id": "1234",
        "amount": 20,
    }
    card.refresh_from_db()
    assert (card.state, card.outcome) == ("done", "ok")
    assert card.message.extras["action_confirm"]["state"] == "confirmed"
    assert [p["state"] for _, e, p in broadcasts if e == "tool_call"] == ["running", "done"]

    with pytest.raises(services.ConversationStateError, match="already answered"):
        chat_services.action_confirm(
            conversation=card.conversation, call_id=card.pk, confirmed=True
        )
    assert len(shop.requests) == 1, "a double tap runs nothing"


@pytest.mark.django_db
def test_a_confirmed_call_is_sent_with_its_own_signed_key(card, shop):
    second = _card(card.conversation, card.action, amount=10)

    for call in (card, second):
        chat_services.action_confirm(
            conversation=card.conversation, call_id=call.pk, confirmed=True
        )

    keys = [r["headers"].get("Idempotency-Key") for r in shop.requests]
    assert keys == [f"call-{card.pk}", f"call-{second.pk}"], "one key per call, never shared"
    for request in shop.requests:
        headers = request["headers"]
        assert signature_valid(
            secret=card.conversation.bot.secret_key,
            timestamp=headers["X-Handoff-Timestamp"],
            user_id="user-42",
            body=request["body"],
            given=headers["X-Handoff-Signature"],
            idempotency_key=headers["Idempotency-Key"],
        )


@pytest.mark.django_db
def test_cancel_declines_and_nothing_is_called(card, shop):
    reply = chat_services.action_confirm(
        conversation=card.conversation, call_id=card.pk, confirmed=False
    )

    assert reply.text == CANCELLED_TEXT
    card.refresh_from_db()
    assert card.state == "cancelled" and shop.requests == []
    with pytest.raises(services.ConversationStateError):
        chat_services.action_confirm(
            conversation=card.conversation, call_id=card.pk, confirmed=True
        )
    assert shop.requests == []


@pytest.mark.django_db
def test_another_conversations_call_is_refused(card, shop, carlas_chat, gus):
    for conversation in (carlas_chat, ConversationFactory(customer=gus)):
        with pytest.raises(services.ConversationStateError, match="no such request"):
            chat_services.action_confirm(conversation=conversation, call_id=card.pk, confirmed=True)
    card.refresh_from_db()
    assert card.state == "pending_confirmation" and shop.requests == []


@pytest.mark.django_db
def test_a_failing_call_after_confirm_offers_a_person(card, shop):
    shop.status = 500

    reply = chat_services.action_confirm(
        conversation=card.conversation, call_id=card.pk, confirmed=True
    )

    assert reply.text.startswith(CANT_CHECK)
    assert reply.extras["offer_human"] is True and reply.outcome == "handoff_proposed"
    assert reply.trace["action_failed"] is True
    card.refresh_from_db()
    assert (card.state, card.outcome) == ("done", "failed")


@pytest.mark.django_db
def test_a_person_who_took_over_ends_the_card(card, shop, agent):
    services.message_add_agent(conversation=card.conversation, agent=agent, text="Hi, Sam here")

    with pytest.raises(services.ConversationStateError, match="person"):
        chat_services.action_confirm(
            conversation=card.conversation, call_id=card.pk, confirmed=True
        )
    assert shop.requests == []


# --- The API -----------------------------------------------------------------------
@pytest.mark.django_db
def test_the_api_confirms_for_its_own_bot_only(client, card, shop, globex_bot):
    body = {"conversation_id": card.conversation_id, "call_id": card.pk, "confirmed": True}

    other = client.post(
        "/api/v1/actions/confirm",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {globex_bot.secret_key}",
    )
    assert other.status_code == 404 and shop.requests == []

    mine = {"HTTP_AUTHORIZATION": f"Bearer {card.conversation.bot.secret_key}"}
    response = client.post(
        "/api/v1/actions/confirm", json.dumps(body), content_type="application/json", **mine
    )
    assert response.status_code == 200
    data = response.json()
    assert data["message"]["text"] == REFUNDED
    assert [c["state"] for c in data["tool_calls"]] == ["running", "done"]
    assert data["tool_calls"][1]["outcome"] == "ok"

    again = client.post(
        "/api/v1/actions/confirm", json.dumps(body), content_type="application/json", **mine
    )
    assert again.status_code == 409 and len(shop.requests) == 1

    bad = client.post(
        "/api/v1/actions/confirm",
        json.dumps({**body, "confirmed": "yes"}),
        content_type="application/json",
        **mine,
    )
    assert bad.status_code == 400


# --- The socket -----------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fresh_rate_limits")
async def test_the_socket_confirms_a_card_of_its_own_conversation_only(card, shop, vera, carla):
    bot = await database_sync_to_async(lambda: card.conversation.bot)()
    bot.allowed_origins = [SHOP]
    await database_sync_to_async(bot.save)(update_fields=["allowed_origins"])
    carlas = await database_sync_to_async(ConversationFactory)(customer=carla)

    ws, _ = await _connect(bot, conversation_id=carlas.pk)
    await ws.send_json_to({"type": "action_confirm", "call_id": card.pk, "confirmed": True})
    refused = await ws.receive_json_from(timeout=5)
    assert (refused["type"], refused["code"]) == ("error", "not_allowed")
    await ws.send_json_to({"type": "action_confirm", "call_id": card.pk, "confirmed": "yes"})
    assert (await ws.receive_json_from(timeout=5))["code"] == "bad_frame"
    await ws.disconnect()
    assert shop.requests == []

    signature = await database_sync_to_async(services.identity_signature)(
        bot=bot, user_id="user-42"
    )
    ws, _ = await _connect(
        bot,
        visitor_id="vera-laptop-1",
        user_id="user-42",
        user_hash=signature,
        conversation_id=card.conversation_id,
    )
    await ws.send_json_to({"type": "action_confirm", "call_id": card.pk, "confirmed": True})
    frames = await _until(
        ws, lambda f: f["type"] == "message.created" and f["message"]["sender"] == "ai"
    )
    kinds = [f["type"] for f in frames]
    assert "tool_call" in kinds
    progress = next(f for f in frames if f["type"] == "tool_call")
    assert progress["progress"] == "Starting your refund…"
    assert frames[-1]["message"]["text"] == REFUNDED
    await ws.disconnect()


# --- The Playground -------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_playground_customer_is_the_demo_shops_signed_in_one(
    client, agent, acme, acme_bot, settings
):
    bot = acme_bot
    client.force_login(agent)
    settings.DEMO_SHOP = True
    body = client.get(reverse("bot_playground", args=[acme.slug, bot.slug])).content.decode()
    signature = services.identity_signature(bot=bot, user_id=DEMO_CUSTOMER)
    assert f'"user_id": "{DEMO_CUSTOMER}"' in body and signature in body
    assert bot.secret_key not in body

    settings.DEMO_SHOP = False
    body = client.get(reverse("bot_playground", args=[acme.slug, bot.slug])).content.decode()
    assert DEMO_CUSTOMER not in body, "without the demo shop, the Playground is anonymous"


@pytest.mark.django_db
def test_the_trace_shows_every_call_for_people(client, agent, acme, verachat, card):
    card.conversation.refresh_from_db()
    reply = chat_services.action_confirm(
        conversation=card.conversation, call_id=card.pk, confirmed=True
    )
    client.force_login(agent)
    bot = verachat.bot
    url = reverse("bot_playground_trace", args=[acme.slug, bot.slug, reply.pk])
    body = client.get(url).content.decode()
    assert "Actions" in body and "start_refund" in body and "needs_confirmation" not in body
    assert "shop-secret" not in body and "127.0.0.1" not in body


# --- The API's event stream ----------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fresh_rate_limits")
async def test_the_api_streams_the_call_as_tool_call_events(async_client, acme_bot, shop):
    await database_sync_to_async(load_demo_knowledge)(acme_bot)
    await database_sync_to_async(order_action)(bot=acme_bot, base_url=shop.url)

    _, events = await _chat(
        async_client,
        acme_bot,
        {"message": "Where's my order 1234?", "customer": {"user_id": "user-42"}},
    )

    calls = [data for name, data in events if name == "tool_call"]
    assert [c["state"] for c in calls] == ["running", "done"]
    assert calls[0] | {"name": "lookup_order", "progress": "Checking your order…"} == calls[0]
    assert calls[1]["outcome"] == "ok" and calls[1]["arguments"] == {"order_id": "1234"}
    assert events[-1] == ("done", events[-1][1]) and events[-1][1]["text"] == SHIPPED
    assert shop.url not in json.dumps(calls)


@pytest.mark.django_db
def test_a_card_of_an_ended_conversation_runs_nothing(card, shop):
    services.conversation_set_status(conversation=card.conversation, status="closed")

    with pytest.raises(services.ConversationStateError, match="ended"):
        chat_services.action_confirm(
            conversation=card.conversation, call_id=card.pk, confirmed=True
        )
    assert shop.requests == []
