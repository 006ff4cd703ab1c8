"""The one push path: service → broadcast_on_commit (transaction.on_commit) → broadcast →
channel layer group_send → consumer handler.

Events go out only after the data they describe is durable, so a client that re-fetches on an
event always finds it. With channels-redis they reach sockets held by any process; with the
in-memory layer only those of the process that commits (the single-process default).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

# Per thread: how many `once` sends each (groups, event) has had (broadcast_on_commit).
_sends = threading.local()


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


def message_groups(*, conversation_id: int, internal: bool) -> list[str]:
    """Who hears of a message: the members following its conversation, and the customer unless
    it is an internal note."""
    groups = [staff_conversation_group(conversation_id)]
    if not internal:
        groups.append(conversation_group(conversation_id))
    return groups


def broadcast_on_commit(
    groups: str | Iterable[str],
    event: str,
    render: Callable[[], dict] | None = None,
    *,
    once: bool = False,
    **payload,
) -> None:
    """After the transaction commits (at once outside one), send `event` to each of `groups`.

    `render`, if given, is called after commit, once for all the groups, and what it returns
    joins `payload`: what it builds (an HTML partial, a row's payload) shows committed data.
    With `once`, a transaction that asks for the same event to the same group several times
    sends it once (a take-over hands off, claims and posts: one queue push); rendered after
    commit, that one push shows every change.

    How `once` knows: a transaction's on-commit callbacks run in the thread that commits, one
    after the other. Each callback knows how many such sends this thread had made when it was
    registered, and one that finds a send made since (by a callback of the same commit, so
    after its change was durable) has nothing left to send.
    """
    groups = [groups] if isinstance(groups, str) else list(groups)
    key = (tuple(groups), event)
    counts = _sends.__dict__.setdefault("counts", {}) if once else {}
    registered = counts.get(key, 0)

    def send() -> None:
        if once:
            if counts.get(key, 0) != registered:
                return  # sent by an earlier callback of this commit
            counts[key] = registered + 1
        data = {**payload, **render()} if render else payload
        for group in groups:
            broadcast(group, event, **data)

    transaction.on_commit(send, robust=True)


async def abroadcast(group: str, event: str, **payload) -> None:
    """`broadcast` for code already on the event loop (a consumer relaying what its client
    said, as typing): the same message, the same handler, the same logging of a failed send."""
    layer = get_channel_layer()
    try:
        await layer.group_send(group, {"type": "on.event", "event": event, **payload})
    except Exception:
        log.exception("broadcast of %s to %s failed", event, group)
