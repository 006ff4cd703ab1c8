"""The organization's live channel: members' pages subscribe here for pushed partials.

Like Baserow's consumers it only authenticates, joins the group and relays; what is sent is
decided by services (config.realtime).

`MemberSocket` is what every member socket (this one and the console's) shares: a socket keeps
no right its person has lost. Each joins its person's group (`user.<id>`), where the services
say when a membership is removed, a role changes or the account is deactivated, and closes;
each frame re-reads the membership, in case that event never came (a row deleted by hand, a
lost push).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from bots.models import Membership
from bots.selectors import membership_get
from config import safejson
from config.realtime import organization_group, user_group

# Close codes (docs/chat-protocol.md). The browser reconnects on neither by itself.
CLOSE_NOT_A_MEMBER = 4403  # not signed in, not (or no longer) a member, deactivated
CLOSE_ROLE_CHANGED = 4409  # the role changed: the page reloads to work with the new one

# Events on `user.<id>` (bots.services) and the close each one means for a socket of the
# organization they name (or of every organization, for the account's own).
MEMBERSHIP_EVENTS = {
    "membership.removed": CLOSE_NOT_A_MEMBER,
    "membership.role_changed": CLOSE_ROLE_CHANGED,
}
EVENT_NAME = re.compile(r"[a-z][a-z_]{0,30}(\.[a-z][a-z_]{0,30}){0,3}")
ACCOUNT_EVENTS = {"user.deactivated": CLOSE_NOT_A_MEMBER, "user.deleted": CLOSE_NOT_A_MEMBER}


@database_sync_to_async
def _membership(user, slug: str) -> Membership | None:
    if not user:
        return None
    try:
        return membership_get(user=user, organization_slug=slug)
    except Http404:
        return None


class MemberSocket:
    """Mixed into a Channels websocket consumer of `ws/o/<org>/...`. Subclasses call
    `member_connect` in `connect`, `member_allowed` before acting on a frame, `member_event`
    first in their event handler, and put what a closing socket must undo in `leave`."""

    membership: Membership | None = None
    closed_with: int | None = None
    _left = False

    async def member_connect(self) -> Membership | None:
        """The membership, with the person's group joined; None (and closed) for anyone else."""
        self.slug = self.scope["url_route"]["kwargs"]["org"]
        self.membership = await _membership(self.scope.get("user"), self.slug)
        if self.membership is None:
            # Not signed in, or not a member. Same answer for both: no existence leak.
            await self.close(code=CLOSE_NOT_A_MEMBER)
            return None
        await self.channel_layer.group_add(user_group(self.membership.user_id), self.channel_name)
        return self.membership

    async def member_allowed(self) -> bool:
        """Whether the socket's person may still act here, read fresh; if not, the socket is
        closed (again: a frame sent after the close is answered by it)."""
        if self.closed_with is not None:
            await self.close(code=self.closed_with)
            return False
        fresh = await _membership(self.scope.get("user"), self.slug)
        if fresh is None:
            await self.member_end(CLOSE_NOT_A_MEMBER)
            return False
        if fresh.role != self.membership.role:
            await self.member_end(CLOSE_ROLE_CHANGED)
            return False
        self.membership = fresh
        return True

    async def member_event(self, message) -> bool:
        """Handles an event about the person's rights (True), or leaves it to the caller."""
        event = message.get("event")
        if event in ACCOUNT_EVENTS:
            await self.member_end(ACCOUNT_EVENTS[event])
            return True
        if event in MEMBERSHIP_EVENTS:
            if message.get("organization_id") == self.membership.organization_id:
                await self.member_end(MEMBERSHIP_EVENTS[event])
            return True
        return False

    async def member_end(self, code: int) -> None:
        """Close from the server, leaving every group first: whatever is pushed from now on
        must not reach this socket, even before the browser's goodbye (which may never come)."""
        if self.closed_with is None:
            self.closed_with = code
            await self._leave_once()
        await self.close(code=code)

    async def _leave_once(self) -> None:
        if self._left or self.membership is None:
            return
        self._left = True
        await self.channel_layer.group_discard(
            user_group(self.membership.user_id), self.channel_name
        )
        await self.leave()

    async def leave(self) -> None:
        """Leave the socket's own groups and undo its bookkeeping (once, whoever closes)."""

    async def disconnect(self, code):
        await self._leave_once()


def _shows(scope) -> frozenset[str] | None:
    """The events the page shows, from `?shows=a,b` (names like `analytics.now`); None (all)
    when it does not say. Several pages share the organization's group, and htmx logs an error
    for every pushed fragment whose element the page does not have."""
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("shows")
    if not values:
        return None
    names = (name.strip() for value in values for name in value.split(","))
    return frozenset(name for name in names if EVENT_NAME.fullmatch(name))


class OrganizationConsumer(MemberSocket, AsyncJsonWebsocketConsumer):
    group: str | None = None
    shows: frozenset[str] | None = None

    async def connect(self):
        if await self.member_connect() is None:
            return
        self.shows = _shows(self.scope)
        self.group = organization_group(self.membership.organization_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def leave(self):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        # Decoded here: the base class's decoding error (or a RecursionError from JSON nested
        # thousands deep) would end the socket with 1011. A malformed frame is ignored.
        try:
            content = safejson.loads(text_data) if text_data else None
        except ValueError:
            return
        if isinstance(content, dict):
            await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        # Members only listen on this channel; writes go through HTTP views and services.
        if not await self.member_allowed():
            return
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def on_event(self, message):
        if await self.member_event(message) or self.closed_with is not None:
            return  # closed by the server: what was already on its way is dropped too
        if self.shows is not None and message.get("event") not in self.shows:
            return
        # htmx's ws extension swaps any element in an HTML frame by id (hx-swap-oob), so an
        # event with html is sent as that fragment; other events go out as JSON.
        if message.get("html"):
            await self.send(text_data=message["html"])
        else:
            await self.send_json({k: v for k, v in message.items() if k != "type"})
