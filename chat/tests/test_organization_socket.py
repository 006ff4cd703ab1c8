"""The organization socket: members receive pushed partials; nobody else can listen."""

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from bots.services import bot_create
from config.realtime import abroadcast, organization_group
from config.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)


def _communicator(user, slug="acme"):
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/o/{slug}/")
    communicator.scope["user"] = user
    return communicator


async def test_a_member_receives_the_bot_list_when_a_bot_is_created(agent, acme):
    communicator = _communicator(agent)
    connected, _ = await communicator.connect()
    assert connected
    await database_sync_to_async(bot_create)(organization=acme, name="Night shift")
    html = await communicator.receive_from(timeout=5)
    assert 'id="bot-list"' in html and 'hx-swap-oob="true"' in html
    assert "Night shift" in html
    await communicator.disconnect()


async def test_another_organization_hears_nothing(outsider, agent, acme, globex):
    theirs = _communicator(outsider, "globex")
    assert (await theirs.connect())[0]
    await database_sync_to_async(bot_create)(organization=acme, name="Secret project")
    assert await theirs.receive_nothing(timeout=0.5)
    await theirs.disconnect()


@pytest.mark.parametrize("who", ["anonymous", "outsider"])
async def test_non_members_cannot_subscribe(outsider, acme, who):
    user = AnonymousUser() if who == "anonymous" else outsider
    communicator = _communicator(user)
    connected, code = await communicator.connect()
    assert not connected
    assert code == 4403


async def test_it_answers_a_ping(agent):
    communicator = _communicator(agent)
    await communicator.connect()
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


async def test_a_frame_nested_thousands_deep_leaves_the_socket_open(agent):
    communicator = _communicator(agent)
    await communicator.connect()
    await communicator.send_to(text_data="[" * 20_000)
    await communicator.send_to(text_data="not json")
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


async def test_a_page_that_says_what_it_shows_gets_only_those_pushes(agent, acme):
    """Several pages share the organization's group; each gets only the events it swaps in
    (htmx logs an error for a fragment whose element the page lacks)."""
    dashboard = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), "/ws/o/acme/?shows=analytics.now"
    )
    dashboard.scope["user"] = agent
    everything = _communicator(agent)
    assert (await dashboard.connect())[0] and (await everything.connect())[0]

    await database_sync_to_async(bot_create)(organization=acme, name="Night shift")
    assert "Night shift" in await everything.receive_from(timeout=5)
    assert await dashboard.receive_nothing(timeout=0.5)

    group = organization_group(acme.pk)
    await abroadcast(group, "analytics.now", html='<section id="analytics-now">2</section>')
    assert 'id="analytics-now"' in await dashboard.receive_from(timeout=5)
    assert 'id="analytics-now"' in await everything.receive_from(timeout=5)
    await dashboard.disconnect()
    await everything.disconnect()


@pytest.mark.parametrize(
    "query", ["shows=", "shows=<script>", "shows=a,,b", "shows=x" * 200, "nothing=here"]
)
async def test_a_malformed_shows_list_is_no_error(agent, acme, query):
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/o/acme/?{query}")
    communicator.scope["user"] = agent
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
    await communicator.disconnect()
