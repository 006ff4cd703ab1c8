"""The widget's socket, against docs/chat-protocol.md: hello, messages and their answers,
reconnects, resends, origins, bad frames, limits, handoff and tenant isolation."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from chat.tests import fixtures_rt
from chat.tests.fixtures_rt import SHIPPING
from config.routing import websocket_application, widget_urlpatterns
from conversations import services
from conversations.models import Conversation, Customer, Message
from conversations.tests.factories import ConversationFactory, MessageFactory
from escalation import services as escalation_services

# Fixtures shared with the other chat-channel tests (fixtures_rt.py says why they live there).
faq_bot = fixtures_rt.faq_bot
fresh_rate_limits = fixtures_rt.fresh_rate_limits
scripted = fixtures_rt.scripted

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fresh_rate_limits"),
]

SHOP = "https://shop.acme.example"


@pytest.fixture
def shop_bot(acme_bot):
    acme_bot.allowed_origins = [SHOP]
    acme_bot.save(update_fields=["allowed_origins"])
    return acme_bot


def _socket(
    key: str, origin: str | None = SHOP, app=None, host: str | None = None, proto: str | None = None
) -> WebsocketCommunicator:
    """The widget's socket opened from a page of `origin`, addressed to `host` (its Host
    header), through a proxy that says the page was served over `proto`."""
    headers = [(b"origin", origin.encode())] if origin else []
    headers += [(b"host", host.encode())] if host else []
    headers += [(b"x-forwarded-proto", proto.encode())] if proto else []
    return WebsocketCommunicator(
        app or URLRouter(widget_urlpatterns), f"/ws/widget/{key}/", headers=headers
    )


async def _connect(bot, **hello) -> tuple[WebsocketCommunicator, dict]:
    ws = _socket(bot.public_key)
    connected, _ = await ws.connect()
    assert connected
    await ws.send_json_to({"type": "hello", "visitor_id": "carla-browser-1", **hello})
    ready = await ws.receive_json_from(timeout=5)
    assert ready["type"] == "ready", ready
    return ws, ready


async def _until(ws, done, timeout=20) -> list[dict]:
    """Frames received until `done(frame)` is true for one (included)."""
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.receive_json_from(timeout=timeout)
            frames.append(frame)
            if done(frame):
                return frames


def _completed(frame) -> bool:
    return (
        frame["type"] == "message.updated"
        and frame["message"]["sender"] == "ai"
        and frame["message"]["state"] in ("complete", "failed")
    )


async def _closed_with(ws) -> int:
    output = await ws.receive_output(timeout=5)
    assert output["type"] == "websocket.close"
    return output["code"]


@database_sync_to_async
def _messages(conversation_id) -> list[tuple[str, str, str]]:
    return list(
        Message.objects.filter(conversation_id=conversation_id)
        .order_by("id")
        .values_list("sender", "state", "text")
    )


@database_sync_to_async
def _counts() -> tuple[int, int, int]:
    return Customer.objects.count(), Conversation.objects.count(), Message.objects.count()


# --- hello ------------------------------------------------------------------------------------
async def test_hello_gets_ready_with_the_conversation_its_messages_and_the_bot(shop_bot, carla):
    conversation = await database_sync_to_async(ConversationFactory)(customer=carla)
    first = await database_sync_to_async(MessageFactory)(
        conversation=conversation, text="Do you ship to Norway?"
    )
    ws, ready = await _connect(shop_bot, conversation_id=conversation.pk)
    assert ready["conversation"]["id"] == conversation.pk
    assert ready["conversation"]["status"] == "ai"
    assert [m["id"] for m in ready["messages"]] == [first.pk]
    assert ready["messages"][0]["text"] == "Do you ship to Norway?"
    assert ready["bot"] == {
        "name": "Acme Support",
        "greeting": shop_bot.greeting,
        "colour": shop_bot.colour,
        "position": "right",
    }
    await ws.disconnect()


async def test_the_playground_records_its_conversations_as_tests(shop_bot, settings, scripted):
    settings.SITE_URL = "https://support.acme.example"
    ws = _socket(shop_bot.public_key, origin="https://support.acme.example")
    assert (await ws.connect())[0]
    await ws.send_json_to(
        {"type": "hello", "visitor_id": "ada-playground-1", "channel": "playground"}
    )
    assert (await ws.receive_json_from(timeout=5))["type"] == "ready"
    await ws.send_json_to({"type": "message", "text": "Shipping?"})
    frames = await _until(ws, _completed)
    started = frames[1]["conversation"]
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=started["id"])
    assert conversation.channel == "playground"
    await ws.disconnect()


async def test_a_customer_site_cannot_pass_its_chats_off_as_playground_tests(shop_bot):
    ws = _socket(shop_bot.public_key)  # the shop's own origin, allowed for the widget
    assert (await ws.connect())[0]
    await ws.send_json_to(
        {"type": "hello", "visitor_id": "carla-browser-1", "channel": "playground"}
    )
    error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "bad_frame" and "own pages" in error["message"]
    await ws.send_json_to({"type": "hello", "visitor_id": "carla-browser-1", "channel": "sms"})
    assert (await ws.receive_json_from(timeout=5))["code"] == "bad_frame"
    await ws.disconnect()


async def test_a_first_hello_stores_nothing(shop_bot):
    ws, ready = await _connect(shop_bot, visitor_id="new-visitor-77", name="Nina")
    assert ready["conversation"] is None and ready["messages"] == []
    assert ready["bot"]["greeting"] == shop_bot.greeting
    # A visitor who only opens the widget leaves no customer and no empty conversation.
    assert await _counts() == (0, 0, 0)
    await ws.disconnect()


async def test_the_first_message_starts_the_conversation_and_says_which(shop_bot, scripted):
    ws, _ready = await _connect(shop_bot, visitor_id="new-visitor-77", name="Nina")
    await ws.send_json_to({"type": "message", "client_message_id": "c-1", "text": "Shipping?"})
    echo = await ws.receive_json_from(timeout=5)
    assert echo["type"] == "message.created" and echo["message"]["client_message_id"] == "c-1"
    started = await ws.receive_json_from(timeout=5)
    assert started["type"] == "conversation.updated"
    assert started["conversation"]["status"] == "ai"
    assert echo["message"]["conversation_id"] == started["conversation"]["id"]
    answer = (await _until(ws, _completed))[-1]["message"]
    assert answer["text"] == SHIPPING
    conversation = await database_sync_to_async(
        Conversation.objects.select_related("customer").get
    )(pk=started["conversation"]["id"])
    assert conversation.customer.visitor_id == "new-visitor-77"
    assert conversation.customer.name == "Nina"
    assert await _counts() == (1, 1, 2)
    await ws.disconnect()


async def test_a_first_message_resent_from_a_socket_that_never_learnt_the_conversation_starts_one(
    shop_bot, scripted
):
    # Two sockets of one visitor, both greeted before any conversation existed (a reconnect
    # racing the first send, or two tabs): the resend and the next message join the first's
    # conversation instead of starting a second.
    first, _ready = await _connect(shop_bot, visitor_id="new-visitor-77")
    second, _ready = await _connect(shop_bot, visitor_id="new-visitor-77")
    frame = {"type": "message", "client_message_id": "c-1", "text": "Shipping?"}
    await first.send_json_to(frame)
    started = (await _until(first, _completed))[1]["conversation"]

    await second.send_json_to(frame)
    joined = await _until(second, lambda f: f["type"] == "conversation.updated", timeout=5)
    assert joined[-1]["conversation"]["id"] == started["id"]
    await second.send_json_to({"type": "message", "client_message_id": "c-2", "text": "Norway?"})
    await _until(second, lambda f: _completed(f) and "Norway" not in f["message"]["text"])
    assert await _counts() == (1, 1, 4)
    assert len(scripted.turns) == 2
    await first.disconnect()
    await second.disconnect()


async def test_talk_to_a_person_before_writing_starts_the_conversation_in_the_queue(shop_bot):
    ws, _ready = await _connect(shop_bot, visitor_id="new-visitor-77")
    await ws.send_json_to({"type": "escalate"})
    notice = await ws.receive_json_from(timeout=5)
    assert notice["message"]["sender"] == "system"
    started = await ws.receive_json_from(timeout=5)
    assert started["type"] == "conversation.updated"
    assert started["conversation"]["status"] == "waiting"
    assert notice["message"]["text"] == services.HANDOFF_MESSAGE
    conversation = await database_sync_to_async(Conversation.objects.get)()
    assert conversation.pk == started["conversation"]["id"]
    assert conversation.handoff_reason == "The customer asked for a person."
    await ws.disconnect()


async def test_frames_that_need_a_conversation_are_refused_before_one_exists(shop_bot):
    ws, _ready = await _connect(shop_bot, visitor_id="new-visitor-77")
    for frame in (
        {"type": "rate", "score": 5},
        {"type": "feedback", "message_id": 1, "value": 1},
        {"type": "leave_email", "email": "nina@example.com"},
    ):
        await ws.send_json_to(frame)
        assert (await ws.receive_json_from(timeout=5))["code"] == "bad_frame"
    await ws.send_json_to({"type": "typing", "active": True})  # nobody to tell: ignored
    assert await ws.receive_nothing(timeout=0.3)
    assert await _counts() == (0, 0, 0)
    await ws.disconnect()


async def test_after_a_resolve_a_hello_without_the_conversation_starts_a_new_one(
    shop_bot, carlas_chat, scripted, agent
):
    await database_sync_to_async(services.message_add_user)(
        conversation=carlas_chat, text="Where is my parcel?"
    )
    await database_sync_to_async(services.conversation_handoff)(
        conversation=carlas_chat, reason="Wants a person"
    )
    await database_sync_to_async(escalation_services.conversation_resolve)(
        conversation=carlas_chat, agent=agent
    )
    # A reload shows the resolved conversation, to rate it...
    ws, ready = await _connect(shop_bot, conversation_id=carlas_chat.pk)
    assert ready["conversation"]["id"] == carlas_chat.pk
    assert ready["conversation"]["status"] == "resolved"
    # ..."Start a new conversation" greets again without it: nothing yet...
    await ws.send_json_to({"type": "hello", "visitor_id": "carla-browser-1"})
    fresh = await ws.receive_json_from(timeout=5)
    assert fresh["type"] == "ready" and fresh["conversation"] is None and fresh["messages"] == []
    # ...until the next message, which starts a new conversation; the old one stays resolved.
    await ws.send_json_to({"type": "message", "text": "Another question"})
    started = (await _until(ws, _completed))[1]
    assert started["type"] == "conversation.updated"
    assert started["conversation"]["id"] != carlas_chat.pk
    await database_sync_to_async(carlas_chat.refresh_from_db)()
    assert carlas_chat.status == "resolved"
    assert [m[2] for m in await _messages(started["conversation"]["id"])] == [
        "Another question",
        SHIPPING,
    ]
    await ws.disconnect()


async def test_it_sends_nothing_before_hello(shop_bot):
    ws = _socket(shop_bot.public_key)
    assert (await ws.connect())[0]
    assert await ws.receive_nothing(timeout=0.3)
    await ws.send_json_to({"type": "ping"})
    assert await ws.receive_json_from() == {"type": "pong"}
    await ws.disconnect()


async def test_a_wrongly_signed_user_id_is_an_identity_error(shop_bot):
    ws = _socket(shop_bot.public_key)
    await ws.connect()
    await ws.send_json_to(
        {"type": "hello", "visitor_id": "vera-laptop-1", "user_id": "user-42", "user_hash": "00"}
    )
    error = await ws.receive_json_from()
    assert error["type"] == "error" and error["code"] == "identity"
    assert "signature" in error["message"]
    await ws.send_json_to({"type": "message", "text": "hello?"})
    assert (await ws.receive_json_from())["code"] == "not_ready"
    await ws.disconnect()


async def test_a_signed_user_id_is_the_verified_customer(shop_bot, vera):
    signature = await database_sync_to_async(services.identity_signature)(
        bot=shop_bot, user_id="user-42"
    )
    ws, _ready = await _connect(
        shop_bot, visitor_id="vera-phone-2", user_id="user-42", user_hash=signature
    )
    await ws.send_json_to({"type": "escalate"})
    started = await _until(ws, lambda f: f["type"] == "conversation.updated", timeout=5)
    conversation = await database_sync_to_async(Conversation.objects.get)(
        pk=started[-1]["conversation"]["id"]
    )
    assert conversation.customer_id == vera.pk
    await ws.disconnect()


# --- origins and keys -------------------------------------------------------------------------
async def test_an_unknown_key_is_closed_with_4404():
    ws = _socket("pk_nobody")
    assert (await ws.connect())[0]
    assert await _closed_with(ws) == 4404


@pytest.mark.parametrize("origin", ["https://evil.example", None])
async def test_an_origin_the_bot_does_not_allow_is_closed_with_4403(shop_bot, origin):
    ws = _socket(shop_bot.public_key, origin=origin)
    assert (await ws.connect())[0]
    assert await _closed_with(ws) == 4403


async def _answers_ping(ws) -> bool:
    assert (await ws.connect())[0]
    await ws.send_json_to({"type": "ping"})
    output = await ws.receive_output(timeout=5)
    await ws.disconnect()
    if output["type"] == "websocket.close":
        assert output["code"] == 4403
        return False
    assert json.loads(output["text"]) == {"type": "pong"}
    return True


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://127.0.0.1:8000", None),  # SITE_URL's origin
        ("http://localhost:8000", "localhost:8000"),  # the origin the socket was addressed to
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),
        ("http://[::1]:8000", "[::1]:8000"),
    ],
)
async def test_this_servers_own_pages_are_always_allowed(acme_bot, settings, origin, host):
    settings.SITE_URL = "http://127.0.0.1:8000"
    assert await _answers_ping(_socket(acme_bot.public_key, origin=origin, host=host))


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:4000",  # a shop on another port of the same machine
        "http://127.0.0.1",  # port 80
        "https://127.0.0.1:8000",  # another scheme
        "http://localhost:8000",  # another host than the socket was addressed to
    ],
)
async def test_another_port_or_scheme_of_this_host_is_another_site(acme_bot, settings, origin):
    # No allowed origins: only this server's own pages may chat, and those are exactly
    # http://127.0.0.1:8000, where this socket was addressed.
    settings.SITE_URL = "http://127.0.0.1:8000"
    assert acme_bot.allowed_origins == []
    ws = _socket(acme_bot.public_key, origin=origin, host="127.0.0.1:8000")
    assert not await _answers_ping(ws)


async def test_a_page_served_over_https_by_a_proxy_is_this_servers_own(acme_bot, settings):
    settings.SITE_URL = "http://127.0.0.1:8000"  # not yet set to the public address
    settings.ALLOWED_HOSTS = ["support.acme.example"]
    own = _socket(
        acme_bot.public_key,
        origin="https://support.acme.example",
        host="support.acme.example",
        proto="https",
    )
    assert await _answers_ping(own)
    # Without the proxy's word the socket came in over plain http: another origin.
    direct = _socket(
        acme_bot.public_key, origin="https://support.acme.example", host="support.acme.example"
    )
    assert not await _answers_ping(direct)


async def test_a_host_the_server_does_not_answer_to_makes_no_page_its_own(acme_bot, settings):
    # A name someone else points at this server (DNS rebinding) does not make their page ours.
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    ws = _socket(acme_bot.public_key, origin="http://evil.example:8000", host="evil.example:8000")
    assert not await _answers_ping(ws)


async def test_the_playground_channel_is_only_for_this_servers_exact_origin(acme_bot, settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    acme_bot.allowed_origins = ["http://127.0.0.1:4000"]
    await database_sync_to_async(acme_bot.save)(update_fields=["allowed_origins"])
    ws = _socket(acme_bot.public_key, origin="http://127.0.0.1:4000", host="127.0.0.1:8000")
    assert (await ws.connect())[0]
    await ws.send_json_to(
        {"type": "hello", "visitor_id": "shop-visitor-1", "channel": "playground"}
    )
    error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "bad_frame" and "own pages" in error["message"]
    await ws.disconnect()


@pytest.mark.parametrize(
    ("origin", "connects"),
    [("http://127.0.0.1:8000", True), ("http://127.0.0.1:4000", False)],
)
async def test_members_sockets_open_only_from_this_servers_exact_origin(
    agent, settings, origin, connects
):
    # The session cookie is sent to every port of a host: another port's page must not be
    # able to open a member's socket with it.
    settings.SITE_URL = "http://127.0.0.1:8000"
    browser = Client()
    await database_sync_to_async(browser.force_login)(agent)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    members = WebsocketCommunicator(
        websocket_application(),
        "/ws/o/acme/",
        headers=[
            (b"origin", origin.encode()),
            (b"host", b"127.0.0.1:8000"),
            (b"cookie", cookie.encode()),
        ],
    )
    connected, _ = await members.connect()
    assert connected is connects
    await members.disconnect()


async def test_the_server_routes_an_embedding_site_to_the_widget_but_not_to_members(shop_bot):
    app = websocket_application()
    widget = _socket(shop_bot.public_key, app=app)
    assert (await widget.connect())[0]
    await widget.send_json_to({"type": "ping"})
    assert await widget.receive_json_from() == {"type": "pong"}
    await widget.disconnect()

    members = WebsocketCommunicator(app, "/ws/o/acme/", headers=[(b"origin", SHOP.encode())])
    connected, _ = await members.connect()
    assert not connected


# --- messages and answers ---------------------------------------------------------------------
async def test_a_message_is_echoed_then_answered_token_by_token_from_the_faq(faq_bot, carlas_chat):
    faq_bot.allowed_origins = [SHOP]
    await database_sync_to_async(faq_bot.save)(update_fields=["allowed_origins"])
    ws, ready = await _connect(faq_bot)
    await ws.send_json_to(
        {"type": "message", "client_message_id": "c-1", "text": "How long does shipping take?"}
    )
    frames = await _until(ws, _completed, timeout=120)
    kinds = [f["type"] for f in frames]

    echo = frames[0]
    assert echo["type"] == "message.created"
    assert echo["message"]["sender"] == "user"
    assert echo["message"]["client_message_id"] == "c-1"
    pending = next(f for f in frames if f["type"] == "message.created" and f is not echo)
    assert pending["message"]["sender"] == "ai" and pending["message"]["state"] == "pending"
    assert pending["message"]["text"] == ""
    tokens = [f for f in frames if f["type"] == "message.token"]
    assert tokens and {t["message_id"] for t in tokens} == {pending["message"]["id"]}
    assert kinds.index("message.token") > kinds.index("message.created")

    answer = frames[-1]["message"]
    assert answer["state"] == "complete"
    assert answer["id"] == pending["message"]["id"]
    assert "3 to 5 business days" in answer["text"]
    assert "".join(t["text"] for t in tokens) == answer["text"]
    assert answer["citations"] and answer["citations"][0]["n"] == 1
    assert "trace" not in answer  # what the bot retrieved is for members, not customers
    await ws.disconnect()


async def test_a_dropped_socket_loses_nothing_and_a_reconnect_gets_only_what_was_missed(
    shop_bot, scripted, carlas_chat
):
    gate = scripted.hold()
    ws, ready = await _connect(shop_bot)
    await ws.send_json_to({"type": "message", "client_message_id": "c-1", "text": "Shipping?"})
    echo = await ws.receive_json_from(timeout=5)
    pending = await ws.receive_json_from(timeout=5)
    assert pending["message"]["state"] == "pending"
    await ws.disconnect()

    gate.set()  # the answer is written while nobody is listening
    conversation_id = ready["conversation"]["id"]
    for _ in range(100):
        if (await _messages(conversation_id))[-1][1] == "complete":
            break
        await asyncio.sleep(0.1)
    assert await _messages(conversation_id) == [
        ("user", "complete", "Shipping?"),
        ("ai", "complete", SHIPPING),
    ]

    again, ready = await _connect(
        shop_bot, conversation_id=conversation_id, after_id=echo["message"]["id"]
    )
    assert [(m["sender"], m["state"], m["text"]) for m in ready["messages"]] == [
        ("ai", "complete", SHIPPING)
    ]
    assert await again.receive_nothing(timeout=0.3)
    await again.disconnect()


async def test_two_quick_messages_are_answered_one_after_the_other(shop_bot, scripted, carlas_chat):
    gate = scripted.hold()
    ws, ready = await _connect(shop_bot)
    await ws.send_json_to({"type": "message", "text": "Do you ship to Norway?"})
    await ws.send_json_to({"type": "message", "text": "And to Iceland?"})
    await asyncio.sleep(0.5)
    assert [t.text for t in scripted.turns] == ["Do you ship to Norway?"]  # the second waits

    gate.set()
    completed = []
    await _until(
        ws, lambda f: _completed(f) and completed.append(f) is None and len(completed) == 2
    )
    answers = await database_sync_to_async(
        lambda: list(
            Message.objects.filter(conversation_id=ready["conversation"]["id"], sender="ai")
            .order_by("id")
            .values_list("reply_to__text", "state", "created_at", "updated_at")
        )
    )()
    assert [(q, state) for q, state, _, _ in answers] == [
        ("Do you ship to Norway?", "complete"),
        ("And to Iceland?", "complete"),
    ]
    assert answers[1][2] >= answers[0][3]  # the second started once the first was complete
    # ...and was written knowing the first: it is in its history.
    assert ("ai", SHIPPING) in scripted.turns[1].history
    await ws.disconnect()


async def test_a_resent_message_is_stored_once_and_answered_once(shop_bot, scripted, carlas_chat):
    ws, ready = await _connect(shop_bot)
    frame = {"type": "message", "client_message_id": "c-1", "text": "Shipping?"}
    await ws.send_json_to(frame)
    first = await _until(ws, _completed)
    echo = first[0]["message"]

    await ws.send_json_to(frame)  # the client never saw its echo, say, and sends again
    again = await ws.receive_json_from(timeout=5)
    assert again == {"type": "message.created", "message": echo}
    assert await ws.receive_nothing(timeout=0.5)
    assert len(scripted.turns) == 1
    assert [m[0] for m in await _messages(ready["conversation"]["id"])] == ["user", "ai"]
    await ws.disconnect()


async def test_html_is_stored_and_sent_as_the_text_it_is(shop_bot, scripted, carlas_chat):
    ws, _ready = await _connect(shop_bot)
    text = "<script>alert('hi')</script> <b>bold</b>"
    await ws.send_json_to({"type": "message", "text": text})
    echo = await ws.receive_json_from(timeout=5)
    assert echo["message"]["text"] == text
    await _until(ws, _completed)
    stored = await database_sync_to_async(Message.objects.get)(pk=echo["message"]["id"])
    assert stored.text == text
    await ws.disconnect()


async def test_after_a_handoff_the_bot_stays_silent(shop_bot, scripted, carlas_chat):
    ws, ready = await _connect(shop_bot)
    conversation = await database_sync_to_async(Conversation.objects.get)(
        pk=ready["conversation"]["id"]
    )
    await database_sync_to_async(services.conversation_handoff)(
        conversation=conversation, reason="Wants a refund"
    )
    note = await ws.receive_json_from(timeout=5)
    assert note["type"] == "message.created" and note["message"]["sender"] == "system"
    updated = await ws.receive_json_from(timeout=5)
    assert updated["type"] == "conversation.updated"
    assert updated["conversation"]["status"] == "waiting"
    assert "handoff_reason" not in updated["conversation"]

    await ws.send_json_to({"type": "message", "text": "Hello? Anyone?"})
    echo = await ws.receive_json_from(timeout=5)
    assert echo["message"]["sender"] == "user"
    assert await ws.receive_nothing(timeout=1)
    assert scripted.turns == []
    assert [m[0] for m in await _messages(conversation.pk)] == ["system", "user"]
    await ws.disconnect()


async def test_escalate_hands_the_conversation_to_people(shop_bot, carlas_chat):
    ws, ready = await _connect(shop_bot)
    await ws.send_json_to({"type": "escalate"})
    frames = await _until(ws, lambda f: f["type"] == "conversation.updated", timeout=5)
    assert frames[-1]["conversation"]["status"] == "waiting"
    conversation = await database_sync_to_async(Conversation.objects.get)(
        pk=ready["conversation"]["id"]
    )
    assert conversation.handoff_reason == "The customer asked for a person."
    await ws.disconnect()


async def test_feedback_and_rating(shop_bot, scripted, carlas_chat):
    ws, ready = await _connect(shop_bot)
    await ws.send_json_to({"type": "message", "text": "Shipping?"})
    answer = (await _until(ws, _completed))[-1]["message"]

    await ws.send_json_to({"type": "feedback", "message_id": answer["id"], "value": -1})
    updated = await ws.receive_json_from(timeout=5)
    assert updated["type"] == "message.updated" and updated["message"]["feedback"] == -1

    # Rated once it is resolved: here by the customer's "Yes".
    await ws.send_json_to({"type": "rate", "score": 5})
    error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "not_allowed" and "resolved" in error["message"]
    await ws.send_json_to({"type": "confirm", "message_id": answer["id"], "answered": True})
    resolved = (await _until(ws, lambda f: f["type"] == "conversation.updated"))[-1]
    assert resolved["conversation"]["status"] == "resolved"
    assert resolved["conversation"]["resolution"] == "bot"

    await ws.send_json_to({"type": "rate", "score": 9})
    error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "bad_frame" and "1 to 5" in error["message"]
    await ws.send_json_to({"type": "rate", "score": 5, "comment": "Quick!"})
    rated = await ws.receive_json_from(timeout=5)
    assert rated["type"] == "conversation.updated" and rated["conversation"]["csat"] == 5
    await ws.send_json_to({"type": "rate", "score": 1})
    error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "not_allowed" and "already been rated" in error["message"]
    conversation = await database_sync_to_async(Conversation.objects.get)(
        pk=ready["conversation"]["id"]
    )
    assert (conversation.csat, conversation.csat_comment) == (5, "Quick!")
    await ws.disconnect()


async def test_feedback_on_another_conversations_message_is_refused(shop_bot, dan, scripted):
    theirs = await database_sync_to_async(ConversationFactory)(customer=dan)
    their_message = await database_sync_to_async(MessageFactory)(
        conversation=theirs, sender="ai", text="Yes."
    )
    ws, _ready = await _connect(shop_bot)
    await ws.send_json_to({"type": "feedback", "message_id": their_message.pk, "value": 1})
    error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "bad_frame"
    await database_sync_to_async(their_message.refresh_from_db)()
    assert their_message.feedback is None
    await ws.disconnect()


# --- frames the protocol refuses --------------------------------------------------------------
@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '{"no": "type"}',
        '{"type": "dance"}',
        '{"type": "message"}',
        '{"type": "message", "text": 42}',
        '{"type": "feedback", "value": 1}',
        '{"type": "hello", "visitor_id": "carla-browser-1", "after_id": "x"}',
        '{"type": "hello"}',
        '{"type": "message", "text": "' + "x" * (64 * 1024) + '"}',
        "[" * 20_000,
        '{"type": "message", "text": "hi", "x": ' + "[" * 40 + "]" * 40 + "}",
    ],
    ids=[
        "not-json",
        "not-an-object",
        "no-type",
        "unknown-type",
        "no-text",
        "text-not-a-string",
        "feedback-without-id",
        "after-id-not-a-number",
        "hello-without-visitor",
        "over-64-kb",
        "nested-20000-deep",
        "nested-40-deep",
    ],
)
async def test_a_bad_frame_is_answered_and_the_socket_stays_open(shop_bot, frame):
    ws, _ready = await _connect(shop_bot)
    await ws.send_to(text_data=frame)
    error = await ws.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == "bad_frame", error
    assert error["message"]
    await ws.send_json_to({"type": "ping"})
    assert await ws.receive_json_from() == {"type": "pong"}
    await ws.disconnect()


async def test_a_binary_frame_is_a_bad_frame(shop_bot):
    ws, _ready = await _connect(shop_bot)
    await ws.send_to(bytes_data=b"\x00\x01")
    assert (await ws.receive_json_from())["code"] == "bad_frame"
    await ws.disconnect()


async def test_a_message_before_hello_is_not_ready(shop_bot):
    ws = _socket(shop_bot.public_key)
    await ws.connect()
    await ws.send_json_to({"type": "message", "text": "Hi"})
    error = await ws.receive_json_from()
    assert error == {"type": "error", "code": "not_ready", "message": "Send hello first."}
    await ws.disconnect()


async def test_a_20000_character_message_is_too_long_and_not_stored(shop_bot, scripted):
    ws, _ready = await _connect(shop_bot)
    await ws.send_json_to({"type": "message", "text": "a" * 20_000})
    error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "too_long"
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    assert f"20000 characters; the limit is {limit}" in error["message"]
    await ws.send_json_to({"type": "message", "text": "   "})
    assert (await ws.receive_json_from(timeout=5))["code"] == "empty"
    # Refused first messages start nothing: no customer, no empty conversation.
    assert await _counts() == (0, 0, 0)
    await ws.disconnect()


async def test_messages_past_the_rate_limit_are_refused(shop_bot, scripted, settings, carlas_chat):
    settings.CHAT_RATE_PER_VISITOR = 2
    scripted.answer = "Sure."
    ws, ready = await _connect(shop_bot)
    for n in range(2):
        await ws.send_json_to({"type": "message", "text": f"Question {n}"})
        await _until(ws, _completed)
    await ws.send_json_to({"type": "message", "text": "One too many"})
    error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "rate_limited"
    assert "Please wait" in error["message"] and "seconds" in error["message"]
    texts = [m[2] for m in await _messages(ready["conversation"]["id"])]
    assert "One too many" not in texts
    await ws.disconnect()


# --- tenant isolation -------------------------------------------------------------------------
async def test_a_hello_naming_someone_elses_conversation_gets_a_fresh_one(
    shop_bot, carla, dan, gus
):
    dans = await database_sync_to_async(ConversationFactory)(customer=dan)
    await database_sync_to_async(MessageFactory)(conversation=dans, text="My address is …")
    globex_chat = await database_sync_to_async(ConversationFactory)(customer=gus)

    for other in (dans, globex_chat):
        ws, ready = await _connect(shop_bot, conversation_id=other.pk)
        assert ready["conversation"] is None
        assert ready["messages"] == []
        await ws.disconnect()


async def test_another_conversations_events_never_reach_this_socket(shop_bot, dan, scripted):
    ws, _ready = await _connect(shop_bot)
    dans = await database_sync_to_async(ConversationFactory)(customer=dan)
    await database_sync_to_async(services.message_add_user)(conversation=dans, text="Secret")
    assert await ws.receive_nothing(timeout=0.5)
    await ws.disconnect()


# --- across processes -------------------------------------------------------------------------
@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set")
async def test_an_answer_streams_through_the_redis_channel_layer(shop_bot, scripted, carlas_chat):
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    ws, ready = await _connect(shop_bot)
    await ws.send_json_to({"type": "message", "client_message_id": "r-1", "text": "Shipping?"})
    frames = await _until(ws, _completed)
    tokens = [f["text"] for f in frames if f["type"] == "message.token"]
    assert "".join(tokens) == SHIPPING == frames[-1]["message"]["text"]
    # Rate limits count in Redis too: the cache follows REDIS_URL.
    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    await ws.disconnect()
