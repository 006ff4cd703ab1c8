"""channels-redis carries a group message from one process to a socket held by another."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings

from config.realtime import organization_group
from config.routing import websocket_urlpatterns

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set"),
]

SEND = """
import os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from config.realtime import broadcast
broadcast({group!r}, "ping", sender_pid=os.getpid())
"""


async def test_a_group_send_from_another_process_reaches_a_consumer_here(agent, acme):
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/o/acme/")
    communicator.scope["user"] = agent
    assert (await communicator.connect())[0]

    # In a thread: a blocking call here would freeze the event loop that the consumer's Redis
    # reads run on, and their timeouts would fire when it resumes.
    sender = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", SEND.format(group=organization_group(acme.pk))],
        cwd=ROOT,
        # The sender needs no database; point it at the same one so settings load as here.
        env={**os.environ, "DEBUG": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sender.returncode == 0, sender.stderr

    message = await communicator.receive_json_from(timeout=10)
    assert message["event"] == "ping"
    assert message["sender_pid"] != os.getpid()
    await communicator.disconnect()


async def test_a_socket_idle_longer_than_the_blocking_pop_still_receives(agent, acme):
    # channels-redis blocks 5 s per BZPOPMIN; with redis-py 8's default 5 s read timeout an idle
    # consumer died at about that moment ("Timeout reading from 127.0.0.1:6379").
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/o/acme/")
    communicator.scope["user"] = agent
    assert (await communicator.connect())[0]
    await asyncio.sleep(12)  # two full blocking pops and then some
    await get_channel_layer().group_send(
        organization_group(acme.pk), {"type": "on.event", "event": "ping"}
    )
    assert (await communicator.receive_json_from(timeout=5))["event"] == "ping"
    await communicator.disconnect()
