"""The organization's live channel: members' pages subscribe here for pushed partials.

Like Baserow's consumers it only authenticates, joins the group and relays; what is sent is
decided by services (config.realtime).
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from bots.models import Membership
from config import safejson
from config.realtime import organization_group


@database_sync_to_async
def _membership_organization_id(user, slug: str) -> int | None:
    if not user or not user.is_authenticated:
        return None
    return (
        Membership.objects.filter(user=user, organization__slug=slug)
        .values_list("organization_id", flat=True)
        .first()
    )


class OrganizationConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self):
        slug = self.scope["url_route"]["kwargs"]["org"]
        organization_id = await _membership_organization_id(self.scope.get("user"), slug)
        if organization_id is None:
            # 4403: not signed in, or not a member. Same answer for both: no existence leak.
            await self.close(code=4403)
            return
        self.group = organization_group(organization_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
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
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def on_event(self, message):
        # htmx's ws extension swaps any element in an HTML frame by id (hx-swap-oob), so an
        # event with html is sent as that fragment; other events go out as JSON.
        if message.get("html"):
            await self.send(text_data=message["html"])
        else:
            await self.send_json({k: v for k, v in message.items() if k != "type"})
