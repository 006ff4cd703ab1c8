"""Escalation through the widget's socket and the API: the customer's button is a manual
human_request, and out of hours the customer is told when to expect an answer and may leave
an e-mail address (leave_email)."""

import json
from datetime import datetime, time, timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from chat.tests import fixtures_rt
from chat.tests.test_consumers import _connect, _until, shop_bot  # noqa: F401
from conversations.models import Conversation
from escalation.hours import zone
from escalation.models import EscalationLog
from escalation.tests.factories import BusinessHoursFactory, EscalationRuleFactory, HolidayFactory

fresh_rate_limits = fixtures_rt.fresh_rate_limits

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fresh_rate_limits"),
]


@pytest.fixture
def closed_today(shop_bot):  # noqa: F811
    """Acme's bot is open around the clock but today (Berlin time) is a holiday."""
    all_day = dict.fromkeys(
        ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
        "00:00-24:00",
    )
    BusinessHoursFactory(bot=shop_bot, timezone="Europe/Berlin", **all_day)
    today = timezone.now().astimezone(zone("Europe/Berlin")).date()
    HolidayFactory(bot=shop_bot, date=today, name="Closed for the test")
    return shop_bot


def _system_message(frame) -> bool:
    return frame["type"] == "message.created" and frame["message"]["sender"] == "system"


async def test_out_of_hours_the_customer_may_leave_an_email(closed_today):
    ws, _ready = await _connect(closed_today)
    await ws.send_json_to({"type": "escalate"})
    frames = await _until(ws, lambda f: f["type"] == "conversation.updated", timeout=5)
    [notice] = [f["message"] for f in frames if _system_message(f)]
    assert notice["text"].startswith("We're away right now. Leave your e-mail")
    assert "(Europe/Berlin)" in notice["text"]
    assert notice["extras"]["ask_email"] is True
    # Open again at midnight, Berlin time, when the holiday ends.
    berlin = zone("Europe/Berlin")
    tomorrow = timezone.now().astimezone(berlin).date() + timedelta(days=1)
    expected = datetime.fromisoformat(notice["extras"]["expected_reply_at"])
    assert expected == datetime.combine(tomorrow, time(0), tzinfo=berlin)
    assert frames[-1]["conversation"]["status"] == "waiting"  # it still waits in the queue

    await ws.send_json_to({"type": "leave_email", "email": "not an address"})
    error = await ws.receive_json_from(timeout=5)
    assert (error["type"], error["code"]) == ("error", "bad_email")

    await ws.send_json_to({"type": "leave_email", "email": " carla@example.com "})
    thanks = await _until(ws, _system_message, timeout=5)
    assert "carla@example.com" in thanks[-1]["message"]["text"]
    conversation = await database_sync_to_async(
        Conversation.objects.select_related("customer").get
    )(pk=frames[-1]["conversation"]["id"])
    assert conversation.customer.email == "carla@example.com"
    assert conversation.status == Conversation.Status.WAITING
    await ws.disconnect()


async def test_leave_email_needs_an_email_field(shop_bot):  # noqa: F811
    ws, _ = await _connect(shop_bot)
    await ws.send_json_to({"type": "leave_email"})
    error = await ws.receive_json_from(timeout=5)
    assert (error["code"], error["message"]) == ("bad_frame", 'A leave_email frame needs "email".')
    await ws.disconnect()


async def test_within_hours_the_handoff_is_announced_as_usual(shop_bot):  # noqa: F811
    ws, _ = await _connect(shop_bot)
    await ws.send_json_to({"type": "escalate"})
    frames = await _until(ws, lambda f: f["type"] == "conversation.updated", timeout=5)
    [notice] = [f["message"] for f in frames if _system_message(f)]
    assert notice["text"] == "Connecting you with a person…"
    assert not notice["extras"].get("ask_email")
    await ws.disconnect()


async def test_the_button_is_a_manual_request_with_the_human_request_rules_queue(
    shop_bot,  # noqa: F811
):
    rule = await database_sync_to_async(EscalationRuleFactory)(
        bot=shop_bot, trigger="human_request", phrases="", priority="high", queue="tier2"
    )
    ws, _ready = await _connect(shop_bot)
    await ws.send_json_to({"type": "escalate"})
    frames = await _until(ws, lambda f: f["type"] == "conversation.updated", timeout=5)
    log = await database_sync_to_async(
        EscalationLog.objects.select_related("conversation", "rule").get
    )(conversation_id=frames[-1]["conversation"]["id"])
    assert (log.trigger, log.manual, log.rule_id) == ("human_request", True, rule.pk)
    assert (log.conversation.priority, log.conversation.queue) == ("high", "tier2")
    await ws.disconnect()


def test_the_api_escalation_is_logged_as_manual(client, carlas_chat):
    response = client.post(
        "/api/v1/escalate",
        json.dumps({"conversation_id": carlas_chat.pk, "reason": "VIP customer"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {carlas_chat.bot.secret_key}"},
    )
    assert response.status_code == 200
    log = EscalationLog.objects.get(conversation=carlas_chat)
    assert (log.trigger, log.manual, log.reason) == ("api", True, "VIP customer")
    assert log.package["suggested_action"].startswith("The customer's site escalated")
