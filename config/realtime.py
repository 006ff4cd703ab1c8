"""The one push path: service → transaction.on_commit → broadcast → consumer handler.

Events go out only after the data they describe is durable, so a client that re-fetches on an
event always finds it. With channels-redis they reach sockets held by any process; with the
in-memory layer only those of the process that commits (the single-process default).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)


def organization_group(organization_id: int) -> str:
    return f"org.{organization_id}"


def conversation_group(conversation_id: int) -> str:
    """Everyone following one conversation: the customer's widget and agents who have it open."""
    return f"conv.{conversation_id}"


def staff_conversation_group(conversation_id: int) -> str:
    """Members following one conversation in the console: everything the customer's group gets,
    plus what only members may see (internal notes, the customer typing, traces)."""
    return f"staff.conv.{conversation_id}"


def user_group(user_id: int) -> str:
    """Every member socket of one person, whatever the organization: told when their rights
    change (removed, another role, deactivated) so those sockets close."""
    return f"user.{user_id}"


def broadcast(group: str, event: str, **payload) -> None:
    """Send `event` to every socket in `group`; consumers handle it in `on_event`.

    `html` in the payload is an HTML fragment with an element id, swapped in by htmx (the same
    partial the HTMX view renders). A failed send is logged, not raised: the write already
    committed, and pages re-sync on reconnect and on their safety-net poll.
    """
    layer = get_channel_layer()
    try:
        async_to_sync(layer.group_send)(group, {"type": "on.event", "event": event, **payload})
    except Exception:
        log.exception("broadcast of %s to %s failed", event, group)


def broadcast_on_commit(group: str, event: str, **payload) -> None:
    transaction.on_commit(lambda: broadcast(group, event, **payload))


def on_commit_render(group: str, event: str, render: Callable[[], str]) -> None:
    """Like broadcast_on_commit, but renders the HTML after commit, from committed data."""
    transaction.on_commit(lambda: broadcast(group, event, html=render()))


async def abroadcast(group: str, event: str, **payload) -> None:
    """`broadcast` for code already on the event loop (a consumer relaying what its client
    said, as typing): the same message, the same handler, the same logging of a failed send."""
    layer = get_channel_layer()
    try:
        await layer.group_send(group, {"type": "on.event", "event": event, **payload})
    except Exception:
        log.exception("broadcast of %s to %s failed", event, group)
