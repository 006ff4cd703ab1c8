"""The console's socket: who may connect and watch, what it relays (the queue to the
organization only, the watched conversation's messages, typing both ways), presence, and bad
frames answered without losing the socket."""

from __future__ import annotations

import json
from html import unescape

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from bots import services as bot_services
from bots.models import Membership
from config.realtime import abroadcast, organization_group
from config.routing import websocket_urlpatterns, widget_urlpatterns
from conversations import services
from conversations.models import Conversation
from conversations.tests.factories import ConversationFactory
from escalation import services as escalation_services
from escalation.services import escalation_open

pytestmark = pytest.mark.django_db(transaction=True)

Status = Conversation.Status


def _console(user, slug="acme"):
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/o/{slug}/console/")
    communicator.scope["user"] = user
    return communicator


async def _connected(user, slug="acme"):
    communicator = _console(user, slug)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _watch(console, conversation_id):
    await console.send_to(json.dumps({"type": "watch", "conversation_id": conversation_id}))
    return await console.receive_from(timeout=5)


async def _until(console, needle, timeout=5):
    """Frames until one contains `needle` (returned)."""
    for _ in range(20):
        frame = await console.receive_from(timeout=timeout)
        if needle in frame:
            return frame
    raise AssertionError(f"no frame with {needle!r}")


@pytest.mark.parametrize("who", ["anonymous", "outsider"])
async def test_non_members_cannot_connect(outsider, acme, who):
    user = AnonymousUser() if who == "anonymous" else outsider
    connected, code = await _console(user).connect()
    assert not connected and code == 4403


async def test_the_queue_is_pushed_to_the_organization_and_nobody_else(
    agent, outsider, carlas_chat
):
    sam = await _connected(agent)
    olga = await _connected(outsider, "globex")
    await database_sync_to_async(escalation_open)(
        conversation=carlas_chat, trigger="human_request", reason="Asked for a person"
    )
    html = await _until(sam, 'id="queue"')
    assert 'hx-swap-oob="true"' in html and "Carla" in html
    assert await olga.receive_nothing(timeout=0.5)
    await sam.disconnect()
    await olga.disconnect()


async def test_the_console_gets_the_queue_not_the_other_pages_partials(agent, acme, carlas_chat):
    """A handoff pushes the queue and analytics' Now tile to the organization; the console has
    no element for the tile (htmx would log an error for it), so only the queue reaches it."""
    sam = await _connected(agent)
    await database_sync_to_async(escalation_open)(
        conversation=carlas_chat, trigger="human_request", reason="Asked for a person"
    )
    assert 'id="queue"' in await _until(sam, 'id="queue"')
    await abroadcast(organization_group(acme.pk), "analytics.now", html='<p id="analytics-now">')
    await abroadcast(organization_group(acme.pk), "bot.created", html='<p id="bot-list">')
    assert await sam.receive_nothing(timeout=0.5)
    await sam.disconnect()


async def test_a_member_watches_a_conversation_and_gets_its_messages_as_html(agent, carlas_chat):
    sam = await _connected(agent)
    assert json.loads(await _watch(sam, carlas_chat.pk)) == {
        "type": "watching",
        "id": carlas_chat.pk,
    }
    await database_sync_to_async(services.message_add_user)(
        conversation=carlas_chat, text="Is anyone there?"
    )
    html = await _until(sam, "Is anyone there?")
    assert f'hx-swap-oob="beforeend:#transcript-{carlas_chat.pk}"' in html
    assert 'class="msg user complete"' in html
    await sam.disconnect()


async def test_a_note_reaches_the_watching_console(agent, carlas_chat):
    sam = await _connected(agent)
    await _watch(sam, carlas_chat.pk)
    await database_sync_to_async(escalation_services.message_add_note)(
        conversation=carlas_chat, agent=agent, text="Refund approved"
    )
    html = await _until(sam, "Refund approved")
    assert "internal" in html
    await sam.disconnect()


async def test_another_organization_cannot_watch_or_type(outsider, carlas_chat):
    olga = await _connected(outsider, "globex")
    error = await _watch(olga, carlas_chat.pk)
    assert 'id="console-error"' in error
    assert f"There is no conversation {carlas_chat.pk} here." in error
    await olga.send_to(
        json.dumps({"type": "typing", "conversation_id": carlas_chat.pk, "active": True})
    )
    assert "Open conversation" in await olga.receive_from(timeout=5)
    # And hears nothing of it.
    await database_sync_to_async(services.message_add_user)(conversation=carlas_chat, text="Secret")
    assert await olga.receive_nothing(timeout=0.5)
    await olga.disconnect()


@pytest.mark.parametrize(
    "frame, says",
    [
        ("not json", "one JSON object"),
        ("[" * 3_000, "one JSON object"),  # under the 4 KB limit, past the parser's depth
        ("[1, 2]", '"type"'),
        ('{"type": "shout"}', '"type"'),
        ('{"type": "watch"}', '"conversation_id"'),
        ('{"type": "watch", "conversation_id": "7"}', '"conversation_id"'),
        ('{"type": "watch", "conversation_id": 987654}', "no conversation 987654"),
        ('{"type": "typing", "conversation_id": 1, "active": "yes"}', '"active"'),
        (
            '{"type": "typing", "conversation_id": 1, "active": true, "x": "' + "a" * 5000 + '"}',
            "at most 4 KB",
        ),
    ],
)
async def test_a_bad_frame_is_answered_and_the_socket_stays_open(agent, acme, frame, says):
    sam = await _connected(agent)
    await sam.send_to(frame)
    answer = await sam.receive_from(timeout=5)
    assert 'id="console-error"' in answer and says in unescape(answer)
    await sam.send_to('{"type": "ping"}')
    assert json.loads(await sam.receive_from(timeout=5)) == {"type": "pong"}
    await sam.disconnect()


async def test_the_agent_typing_reaches_the_customers_widget(agent, acme_bot, carla, carlas_chat):
    acme_bot.allowed_origins = ["https://shop.acme.example"]
    await database_sync_to_async(acme_bot.save)(update_fields=["allowed_origins"])
    widget = WebsocketCommunicator(
        URLRouter(widget_urlpatterns),
        f"/ws/widget/{acme_bot.public_key}/",
        headers=[(b"origin", b"https://shop.acme.example")],
    )
    assert (await widget.connect())[0]
    await widget.send_json_to({"type": "hello", "visitor_id": carla.visitor_id})
    ready = await widget.receive_json_from(timeout=5)
    conversation_id = ready["conversation"]["id"]

    sam = await _connected(agent)
    await _watch(sam, conversation_id)
    await sam.send_to(
        json.dumps({"type": "typing", "conversation_id": conversation_id, "active": True})
    )
    assert await widget.receive_json_from(timeout=5) == {
        "type": "typing",
        "name": "Sam",
        "active": True,
    }
    await sam.disconnect()
    await widget.disconnect()


async def test_the_customer_typing_reaches_the_console_only_while_a_person_is_there(
    agent, acme_bot, carla, carlas_chat
):
    acme_bot.allowed_origins = ["https://shop.acme.example"]
    await database_sync_to_async(acme_bot.save)(update_fields=["allowed_origins"])
    widget = WebsocketCommunicator(
        URLRouter(widget_urlpatterns),
        f"/ws/widget/{acme_bot.public_key}/",
        headers=[(b"origin", b"https://shop.acme.example")],
    )
    assert (await widget.connect())[0]
    await widget.send_json_to({"type": "hello", "visitor_id": carla.visitor_id})
    conversation_id = (await widget.receive_json_from(timeout=5))["conversation"]["id"]
    sam = await _connected(agent)
    await _watch(sam, conversation_id)

    # With the bot: nobody to tell.
    await widget.send_json_to({"type": "typing", "active": True})
    assert await sam.receive_nothing(timeout=0.5)

    await widget.send_json_to({"type": "escalate"})
    await _until(sam, 'id="queue"')
    for _ in range(3):  # the handoff's events reach the widget first
        frame = await widget.receive_json_from(timeout=5)
        if frame["type"] == "conversation.updated":
            break
    await widget.send_json_to({"type": "typing", "active": True})
    html = await _until(sam, "is typing")
    assert f'id="typing-{conversation_id}"' in html and "Carla is typing…" in html
    await widget.send_json_to({"type": "typing", "active": False})
    html = await _until(sam, f'id="typing-{conversation_id}"')
    assert "is typing" not in html
    # Faster than a widget sends: relayed once.
    await widget.send_json_to({"type": "typing", "active": True})
    await widget.send_json_to({"type": "typing", "active": True})
    assert "is typing" in await _until(sam, "is typing")
    assert await sam.receive_nothing(timeout=0.5)

    await widget.send_json_to({"type": "typing", "active": "yes"})
    while (frame := await widget.receive_json_from(timeout=5))["type"] != "error":
        pass
    assert frame["code"] == "bad_frame"
    await sam.disconnect()
    await widget.disconnect()


async def test_the_console_socket_keeps_presence(agent, acme):
    membership = await database_sync_to_async(Membership.objects.get)(user=agent)
    assert membership.availability == "offline"

    first = await _connected(agent)
    second = await _connected(agent)

    async def availability():
        return (await database_sync_to_async(Membership.objects.get)(user=agent)).availability

    assert await availability() == "online"
    await first.disconnect()
    assert await availability() == "online"  # another console is still open
    await second.disconnect()
    assert await availability() == "offline"


async def test_an_agent_who_is_away_stays_away_when_opening_the_console(agent, acme):
    await database_sync_to_async(Membership.objects.filter(user=agent).update)(availability="away")
    sam = await _connected(agent)
    membership = await database_sync_to_async(Membership.objects.get)(user=agent)
    assert membership.availability == "away" and membership.last_seen_at is not None
    await sam.disconnect()


async def test_an_outsider_is_never_notified_of_a_claim(agent, outsider, carla):
    conversation = await database_sync_to_async(ConversationFactory)(
        customer=carla, status=Status.WAITING
    )
    olga = await _connected(outsider, "globex")
    await database_sync_to_async(escalation_services.conversation_claim)(
        conversation=conversation, agent=agent
    )
    assert await olga.receive_nothing(timeout=0.5)
    await olga.disconnect()


async def test_the_open_conversation_shows_when_a_colleague_claims_it(
    agent, admin_member, carlas_chat
):
    await database_sync_to_async(escalation_open)(
        conversation=carlas_chat, trigger="human_request", reason="Asked for a person"
    )
    sam = await _connected(agent)
    await _watch(sam, carlas_chat.pk)
    await database_sync_to_async(escalation_services.conversation_claim)(
        conversation=carlas_chat, agent=admin_member
    )
    html = unescape(await _until(sam, f'id="pane-status-{carlas_chat.pk}"'))
    assert 'hx-swap-oob="true"' in html
    assert "With an agent: Ian" in html and ">Claim</button>" not in html
    # A change that shows nowhere in the header (the unread mark) sends nothing more.
    await database_sync_to_async(escalation_services.conversation_mark_seen)(
        conversation=carlas_chat
    )
    frames = []
    while not await sam.receive_nothing(timeout=0.5):
        frames.append(await sam.receive_from())
    assert not any("pane-status" in f for f in frames)
    await sam.disconnect()


async def test_another_organizations_changes_never_reach_the_open_pane(
    agent, outsider, carlas_chat, gus
):
    sam = await _connected(agent)
    await _watch(sam, carlas_chat.pk)
    theirs = await database_sync_to_async(ConversationFactory)(customer=gus)
    await database_sync_to_async(escalation_open)(
        conversation=theirs, trigger="human_request", reason="Asked"
    )
    frames = []
    while not await sam.receive_nothing(timeout=0.5):
        frames.append(await sam.receive_from())
    assert not any("pane-status" in f for f in frames)
    await sam.disconnect()


async def test_an_agent_away_when_the_console_dropped_is_away_again_on_reconnect(agent, acme):
    async def availability():
        return (await database_sync_to_async(Membership.objects.get)(user=agent)).availability

    sam = await _connected(agent)
    membership = await database_sync_to_async(Membership.objects.get)(user=agent)
    await database_sync_to_async(bot_services.membership_set_availability)(
        membership=membership, availability="away"
    )
    await sam.disconnect()  # the connection dropped
    assert await availability() == "offline"
    again = await _connected(agent)
    assert await availability() == "away"
    await again.disconnect()


@database_sync_to_async
def _sam_replied(conversation, agent):
    services.message_add_user(conversation=conversation, text="I need a person")
    escalation_services.conversation_take_over(conversation=conversation, agent=agent)
    escalation_services.conversation_reply(conversation=conversation, agent=agent, text="Hi!")


async def test_the_customer_typing_reaches_the_agent_awaiting_their_answer(
    agent, acme_bot, carla, carlas_chat
):
    acme_bot.allowed_origins = ["https://shop.acme.example"]
    await database_sync_to_async(acme_bot.save)(update_fields=["allowed_origins"])
    await _sam_replied(carlas_chat, agent)
    widget = WebsocketCommunicator(
        URLRouter(widget_urlpatterns),
        f"/ws/widget/{acme_bot.public_key}/",
        headers=[(b"origin", b"https://shop.acme.example")],
    )
    assert (await widget.connect())[0]
    await widget.send_json_to({"type": "hello", "visitor_id": carla.visitor_id})
    ready = await widget.receive_json_from(timeout=5)
    assert ready["conversation"]["status"] == "awaiting_customer"
    sam = await _connected(agent)
    await _watch(sam, carlas_chat.pk)
    await widget.send_json_to({"type": "typing", "active": True})
    html = await _until(sam, "is typing")
    assert "Carla is typing…" in html
    await sam.disconnect()
    await widget.disconnect()
