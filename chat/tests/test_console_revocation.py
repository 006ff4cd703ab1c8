"""A console socket keeps no rights its person has lost: removed from the organization, given
another role or deactivated, their open consoles close (the services' event on `user.<id>`),
and every frame re-reads the membership, so a row that vanished without the event is caught
at the next frame. Nobody else's socket is touched."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core.cache import cache

from bots import services as bot_services
from bots.models import Membership, Role
from config.routing import websocket_urlpatterns, widget_urlpatterns
from conversations import services
from conversations.tests.factories import ConversationFactory
from escalation.services import escalation_open

pytestmark = pytest.mark.django_db(transaction=True)


async def _connected(user, slug="acme"):
    console = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/o/{slug}/console/")
    console.scope["user"] = user
    connected, _ = await console.connect()
    assert connected
    return console


async def _closed_with(console, timeout=5) -> int:
    """The close code of the next close the socket receives (frames before it are skipped)."""
    for _ in range(20):
        output = await console.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return output.get("code")
    raise AssertionError("the socket was not closed")


async def _until_closed(console) -> list[dict]:
    """What the socket receives up to its close, the close last. (Without the event, the
    queue's push for the whole organization may come first.)"""
    outputs = []
    while not outputs or outputs[-1]["type"] != "websocket.close":
        outputs.append(await console.receive_output(timeout=5))
    return outputs


async def _watch(console, conversation_id):
    await console.send_to(json.dumps({"type": "watch", "conversation_id": conversation_id}))


def _membership(user, organization):
    return Membership.objects.get(user=user, organization=organization)


async def _remove(user, organization):
    membership = await database_sync_to_async(_membership)(user, organization)
    await database_sync_to_async(bot_services.membership_remove)(membership=membership)


def _new_conversation_with_a_message(customer, text):
    conversation = ConversationFactory(customer=customer)
    escalation_open(conversation=conversation, trigger="human_request", reason="Asked")
    services.message_add_user(conversation=conversation, text=text)
    return conversation


async def test_it_closes_a_removed_members_console_and_tells_them_nothing_more(
    owner, agent, acme, carla
):
    sam = await _connected(agent)
    await _remove(agent, acme)
    assert await _closed_with(sam) == 4403

    later = await database_sync_to_async(_new_conversation_with_a_message)(carla, "My card no.")
    await _watch(sam, later.pk)
    output = await sam.receive_output(timeout=5)
    assert output == {"type": "websocket.close", "code": 4403}
    await database_sync_to_async(services.message_add_user)(conversation=later, text="Still 4111")
    assert await sam.receive_nothing(timeout=0.5)


async def test_it_stops_the_watched_conversation_reaching_a_removed_member(
    owner, agent, acme, carlas_chat
):
    sam = await _connected(agent)
    await _watch(sam, carlas_chat.pk)
    assert json.loads(await sam.receive_from(timeout=5))["type"] == "watching"
    await _remove(agent, acme)
    assert await _closed_with(sam) == 4403
    await database_sync_to_async(services.message_add_user)(
        conversation=carlas_chat, text="My address is 1 Elm St"
    )
    assert await sam.receive_nothing(timeout=0.5)


async def test_a_frame_after_the_row_vanished_without_an_event_is_refused(
    agent, acme, carla, carlas_chat
):
    sam = await _connected(agent)
    # Deleted behind the services' back: no event, so only the frame's own check can refuse.
    await database_sync_to_async(Membership.objects.filter(user=agent, organization=acme).delete)()
    later = await database_sync_to_async(_new_conversation_with_a_message)(carla, "Hello?")
    await _watch(sam, later.pk)
    before_the_close = await _until_closed(sam)
    assert before_the_close[-1] == {"type": "websocket.close", "code": 4403}
    assert not any('"watching"' in output.get("text", "") for output in before_the_close)
    await database_sync_to_async(services.message_add_user)(conversation=later, text="Anyone?")
    assert await sam.receive_nothing(timeout=0.5)


async def test_a_typing_frame_after_the_row_vanished_never_reaches_the_customer(
    agent, acme, acme_bot, carla, carlas_chat
):
    acme_bot.allowed_origins = ["https://shop.acme.example"]
    await database_sync_to_async(acme_bot.save)(update_fields=["allowed_origins"])
    widget = WebsocketCommunicator(
        URLRouter(widget_urlpatterns),
        f"/ws/widget/{acme_bot.public_key}/",
        headers=[(b"origin", b"https://shop.acme.example")],
    )
    assert (await widget.connect())[0]
    # Carla resumes her open conversation (a hello alone starts none).
    await widget.send_json_to({"type": "hello", "visitor_id": carla.visitor_id})
    conversation_id = (await widget.receive_json_from(timeout=5))["conversation"]["id"]
    assert conversation_id == carlas_chat.pk
    sam = await _connected(agent)
    await _watch(sam, conversation_id)
    await sam.receive_from(timeout=5)

    await database_sync_to_async(Membership.objects.filter(user=agent, organization=acme).delete)()
    await sam.send_to(
        json.dumps({"type": "typing", "conversation_id": conversation_id, "active": True})
    )
    assert await sam.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
    assert await widget.receive_nothing(timeout=0.5)
    await widget.disconnect()


async def test_a_role_change_closes_the_console_so_it_reconnects_with_the_new_role(agent, acme):
    sam = await _connected(agent)
    membership = await database_sync_to_async(_membership)(agent, acme)
    await database_sync_to_async(bot_services.membership_set_role)(
        membership=membership, role=Role.ADMIN
    )
    assert await _closed_with(sam) == 4409
    again = await _connected(agent)
    await again.send_to('{"type": "ping"}')
    assert json.loads(await again.receive_from(timeout=5)) == {"type": "pong"}
    await again.disconnect()


async def test_deactivating_a_person_closes_every_console_they_have_open(agent, acme, globex):
    await database_sync_to_async(bot_services.membership_add)(
        organization=globex, user=agent, role=Role.AGENT
    )
    at_acme, at_globex = await _connected(agent), await _connected(agent, "globex")
    await database_sync_to_async(bot_services.user_set_active)(user=agent, is_active=False)
    assert await _closed_with(at_acme) == 4403
    assert await _closed_with(at_globex) == 4403
    # The session's user object still says active; the database does not.
    console = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/o/acme/console/")
    console.scope["user"] = agent
    assert await console.connect() == (False, 4403)


async def test_a_removal_closes_only_that_organizations_console(agent, acme, globex):
    await database_sync_to_async(bot_services.membership_add)(
        organization=globex, user=agent, role=Role.AGENT
    )
    at_acme, at_globex = await _connected(agent), await _connected(agent, "globex")
    await _remove(agent, acme)
    assert await _closed_with(at_acme) == 4403
    await at_globex.send_to('{"type": "ping"}')
    assert json.loads(await at_globex.receive_from(timeout=5)) == {"type": "pong"}
    await at_globex.disconnect()


async def test_a_colleagues_console_stays_open_and_keeps_working(
    owner, agent, admin_member, acme, carla
):
    sam, ian = await _connected(agent), await _connected(admin_member)
    await _remove(agent, acme)
    assert await _closed_with(sam) == 4403

    later = await database_sync_to_async(ConversationFactory)(customer=carla)
    await _watch(ian, later.pk)
    assert json.loads(await ian.receive_from(timeout=5)) == {"type": "watching", "id": later.pk}
    await database_sync_to_async(services.message_add_user)(conversation=later, text="Hi Ian")
    for _ in range(5):
        if "Hi Ian" in await ian.receive_from(timeout=5):
            break
    else:
        raise AssertionError("Ian did not get the customer's message")
    await ian.disconnect()


async def test_another_organizations_console_is_untouched_and_never_sees_acme(
    agent, outsider, acme, carla
):
    olga = await _connected(outsider, "globex")
    await _remove(agent, acme)
    await olga.send_to('{"type": "ping"}')
    assert json.loads(await olga.receive_from(timeout=5)) == {"type": "pong"}

    later = await database_sync_to_async(ConversationFactory)(customer=carla)
    await _watch(olga, later.pk)
    assert f"There is no conversation {later.pk} here." in await olga.receive_from(timeout=5)
    await database_sync_to_async(services.message_add_user)(conversation=later, text="Secret")
    assert await olga.receive_nothing(timeout=0.5)
    await olga.disconnect()


async def test_presence_stays_counted_right_when_sockets_are_closed_this_way(agent, acme):
    async def availability():
        return (await database_sync_to_async(_membership)(agent, acme)).availability

    first, second = await _connected(agent), await _connected(agent)
    assert await availability() == "online"
    membership = await database_sync_to_async(_membership)(agent, acme)
    await database_sync_to_async(bot_services.membership_set_role)(
        membership=membership, role=Role.ADMIN
    )
    assert await _closed_with(first) == 4409 and await _closed_with(second) == 4409
    # The server closed both: offline, without waiting for the browsers' goodbyes, and their
    # goodbyes count nothing twice.
    assert await availability() == "offline"
    await first.disconnect()
    await second.disconnect()
    again = await _connected(agent)
    assert await availability() == "online"
    await again.disconnect()
    assert await availability() == "offline"


async def test_a_removed_members_presence_count_is_cleared(agent, acme):
    sam = await _connected(agent)
    membership = await database_sync_to_async(_membership)(agent, acme)
    key = bot_services._console_key(bot_services.CONSOLE_SOCKETS_KEY, membership)
    assert cache.get(key) == 1
    await database_sync_to_async(Membership.objects.filter(pk=membership.pk).delete)()
    await sam.send_to('{"type": "ping"}')
    assert await sam.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
    await sam.disconnect()  # the browser's goodbye, on a row that is gone: no error
    assert cache.get(key) is None
