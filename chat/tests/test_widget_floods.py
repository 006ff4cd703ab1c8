"""A client that floods the widget's socket: fresh visitor ids, hellos, requests for a person.

The attack this answers: one socket sent 100 hellos with fresh visitor ids, each followed by
`escalate`, and filled the queue with 100 waiting conversations and every agent's inbox with
notifications. Every frame kind is counted; new conversations are capped per socket and per
client address.
"""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from chat.tests import fixtures_rt
from config.routing import widget_urlpatterns
from conversations.models import Conversation, Customer

fresh_rate_limits = fixtures_rt.fresh_rate_limits

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fresh_rate_limits"),
]

SHOP = "https://shop.acme.example"
FLOODER = "203.0.113.9"


@pytest.fixture
def shop_bot(acme_bot):
    acme_bot.allowed_origins = [SHOP]
    acme_bot.save(update_fields=["allowed_origins"])
    return acme_bot


async def _socket(bot, ip: str = FLOODER) -> WebsocketCommunicator:
    ws = WebsocketCommunicator(
        URLRouter(widget_urlpatterns),
        f"/ws/widget/{bot.public_key}/",
        headers=[(b"origin", SHOP.encode())],
    )
    ws.scope["client"] = [ip, 50_000]
    connected, _ = await ws.connect()
    assert connected
    return ws


async def _hello(ws, visitor: str) -> dict:
    await ws.send_json_to({"type": "hello", "visitor_id": visitor})
    return await ws.receive_json_from(timeout=5)


async def _escalate(ws) -> list[dict]:
    """What the socket answers to `escalate`: the frames until the conversation's status, or
    the one error."""
    await ws.send_json_to({"type": "escalate"})
    frames = []
    while True:
        frame = await ws.receive_json_from(timeout=5)
        frames.append(frame)
        if frame["type"] in ("error", "conversation.updated"):
            return frames


@database_sync_to_async
def _waiting() -> int:
    return Conversation.objects.filter(status=Conversation.Status.WAITING).count()


async def test_one_socket_cannot_fill_the_queue_with_fresh_visitors(shop_bot, settings):
    settings.CHAT_CONVERSATIONS_PER_SOCKET = 3
    ws = await _socket(shop_bot)
    refused = 0
    for n in range(10):
        hello = await _hello(ws, f"flood-visitor-{n}")
        assert hello["type"] == "ready", (n, hello)
        answer = await _escalate(ws)
        if answer[-1]["type"] == "error":
            assert answer[-1]["code"] == "rate_limited"
            assert "Reload the page" in answer[-1]["message"]
            refused += 1
    assert await _waiting() == 3
    assert refused == 7
    # The refused visitors were not stored either.
    assert await database_sync_to_async(Customer.objects.count)() == 3
    await ws.disconnect()


async def test_a_client_address_starts_a_bounded_number_of_conversations_an_hour(
    shop_bot, settings
):
    settings.CHAT_CONVERSATIONS_PER_IP_HOUR = 2
    answers = []
    for n in range(3):
        ws = await _socket(shop_bot)
        await _hello(ws, f"browser-tab-{n}")
        answers.append((await _escalate(ws))[-1])
        await ws.disconnect()
    assert [a["type"] for a in answers] == ["conversation.updated"] * 2 + ["error"]
    assert "new conversations an hour from your network" in answers[2]["message"]
    assert await _waiting() == 2
    # Another client address is not held back by this one.
    ws = await _socket(shop_bot, ip="198.51.100.7")
    await _hello(ws, "someone-else")
    assert (await _escalate(ws))[-1]["type"] == "conversation.updated"
    await ws.disconnect()


async def test_hellos_count_against_the_limit_per_client_address(shop_bot, settings):
    settings.CHAT_RATE_PER_IP = 5
    ws = await _socket(shop_bot)
    answers = [(await _hello(ws, f"visitor-no-{n}"))["type"] for n in range(6)]
    assert answers == ["ready"] * 5 + ["error"]
    await ws.send_json_to({"type": "hello", "visitor_id": "one-more"})
    error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "rate_limited" and "requests a minute" in error["message"]
    await ws.disconnect()


async def test_requests_count_per_visitor_apart_from_messages(shop_bot, settings, carlas_chat):
    settings.CHAT_RATE_PER_VISITOR = 2
    ws = await _socket(shop_bot)
    ready = await _hello(ws, "carla-browser-1")  # Carla's open conversation, resumed
    assert ready["conversation"]["id"] == carlas_chat.pk
    for _ in range(3):
        await ws.send_json_to({"type": "leave_email", "email": "carla@example.com"})
    errors = []
    while not await ws.receive_nothing(timeout=1):
        frame = await ws.receive_json_from(timeout=5)
        if frame["type"] == "error":
            errors.append(frame["code"])
    # Two e-mails a minute are within Carla's limit, the third is not.
    assert errors == ["rate_limited"]
    await ws.disconnect()
