"""The organization page's socket keeps no rights its person has lost: removal, a new role or
deactivation close it, a frame re-reads the membership, and nobody else's socket is touched."""

import json

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from bots import services
from bots.models import Membership, Role
from config.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)


async def _connected(user, slug="acme"):
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/o/{slug}/")
    communicator.scope["user"] = user
    assert (await communicator.connect())[0]
    return communicator


async def _closed_with(communicator) -> int:
    for _ in range(20):
        output = await communicator.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            return output.get("code")
    raise AssertionError("the socket was not closed")


def _membership(user, organization):
    return Membership.objects.get(user=user, organization=organization)


async def test_it_closes_a_removed_members_page_and_pushes_nothing_more(agent, admin_member, acme):
    sam, ian = await _connected(agent), await _connected(admin_member)
    membership = await database_sync_to_async(_membership)(agent, acme)
    await database_sync_to_async(services.membership_remove)(membership=membership)
    assert await _closed_with(sam) == 4403

    await database_sync_to_async(services.bot_create)(organization=acme, name="Secret project")
    assert await sam.receive_nothing(timeout=0.5)
    assert "Secret project" in await ian.receive_from(timeout=5)
    await ian.disconnect()


async def test_a_frame_after_the_row_vanished_without_an_event_is_refused(agent, acme):
    sam = await _connected(agent)
    await database_sync_to_async(Membership.objects.filter(user=agent, organization=acme).delete)()
    await sam.send_json_to({"type": "ping"})
    assert await sam.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}


async def test_a_role_change_closes_the_page_socket_to_reconnect(agent, acme):
    sam = await _connected(agent)
    membership = await database_sync_to_async(_membership)(agent, acme)
    await database_sync_to_async(services.membership_set_role)(
        membership=membership, role=Role.ADMIN
    )
    assert await _closed_with(sam) == 4409


async def test_deactivation_closes_the_page_socket(agent, acme):
    sam = await _connected(agent)
    await database_sync_to_async(services.user_set_active)(user=agent, is_active=False)
    assert await _closed_with(sam) == 4403


async def test_another_organizations_page_is_untouched(agent, outsider, acme):
    olga = await _connected(outsider, "globex")
    membership = await database_sync_to_async(_membership)(agent, acme)
    await database_sync_to_async(services.membership_remove)(membership=membership)
    await olga.send_json_to({"type": "ping"})
    assert json.loads(await olga.receive_from(timeout=5)) == {"type": "pong"}
    await olga.disconnect()


async def test_deleting_the_account_closes_the_page_socket(agent, acme):
    sam = await _connected(agent)
    await database_sync_to_async(services.user_delete)(user=agent)
    assert await _closed_with(sam) == 4403
