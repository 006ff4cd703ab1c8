"""The agent console's socket, `ws/o/<org>/console/` (members only, signed in by session).

It joins the organization's group (the queue partial, pushed by the services after commit),
follows the one conversation the console has open (`watch`: membership checked, then
`staff.conv.<id>`), relays the agent's typing to the customer's widget, and keeps the member's
presence: online while a console is open, offline when the last one closes.

It keeps no right its person has lost (chat.consumers.members.MemberSocket): every frame and every
piece of a watched conversation re-reads the membership, and a removal, a new role or a
deactivation closes it (4403, 4409) and takes it out of every group at once.

Messages reach the watchers as the JSON payload the customer's widget gets, and are rendered
to the transcript's partial here rather than in the services: most conversations are watched
by nobody (the bot's), so rendering on commit would render every bot message for no one;
here it is rendered only for a socket that shows it.
"""

from __future__ import annotations

import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404

from bots import services as bot_services
from bots.models import Membership
from chat.consumers.members import MemberSocket
from config import safejson
from config.realtime import (
    abroadcast,
    conversation_group,
    organization_group,
    staff_conversation_group,
)
from escalation.live import error_html, message_html, pane_status_html, typing_html
from escalation.selectors import console_conversation_get

MAX_FRAME_BYTES = 4 * 1024
FRAME_TYPES = {"ping", "watch", "typing"}
CONSOLE_PARTIALS = {"console.queue"}  # pushed to the organization group with "html"


class BadFrame(ValueError):
    pass


@database_sync_to_async
def _conversation_in(membership: Membership, conversation_id: int) -> bool:
    try:
        console_conversation_get(membership=membership, conversation_id=conversation_id)
    except Http404:
        return False
    return True


class ConsoleConsumer(MemberSocket, AsyncWebsocketConsumer):
    group: str | None = None
    watching: int | None = None
    # What the console last showed of the watched conversation (status, agent, priority, queue).
    watched_status: tuple | None = None

    async def connect(self):
        if await self.member_connect() is None:
            return
        # Online before the socket opens: the page, told it is open, shows it.
        await database_sync_to_async(bot_services.membership_console_opened)(
            membership=self.membership
        )
        self.group = organization_group(self.membership.organization_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def leave(self):
        """Out of every group, and one console fewer for presence: on the browser's goodbye or
        when the server closes (membership removed, role changed), whichever comes first."""
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        await self._unwatch()
        await database_sync_to_async(bot_services.membership_console_closed)(
            membership=self.membership
        )

    # --- Frames in ---------------------------------------------------------------------------
    async def receive(self, text_data=None, bytes_data=None):
        # Every frame, whatever it asks: the person may have lost this organization since.
        if not await self.member_allowed():
            return
        try:
            frame = _decode(text_data)
            await getattr(self, f"on_{frame['type']}")(frame)
        except BadFrame as exc:
            await self.send(text_data=error_html(text=str(exc)))

    async def on_ping(self, frame):
        await self.send(text_data=json.dumps({"type": "pong"}))

    async def on_watch(self, frame):
        conversation_id = _id(frame)
        if not await _conversation_in(self.membership, conversation_id):
            # Another organization's conversation and one that does not exist look alike.
            raise BadFrame(f"There is no conversation {conversation_id} here.")
        if conversation_id != self.watching:
            await self._unwatch()
            await self.channel_layer.group_add(
                staff_conversation_group(conversation_id), self.channel_name
            )
            self.watching, self.watched_status = conversation_id, None
        await self.send(text_data=json.dumps({"type": "watching", "id": conversation_id}))

    async def on_typing(self, frame):
        conversation_id = _id(frame)
        active = frame.get("active")
        if not isinstance(active, bool):
            raise BadFrame('"active" is true or false.')
        if conversation_id != self.watching:
            # Watching is where membership of the conversation was checked.
            raise BadFrame(f"Open conversation {conversation_id} before typing in it.")
        await abroadcast(
            conversation_group(conversation_id),
            "typing",
            name=self.membership.user.display_name,
            active=active,
        )

    async def _status_changed(self, conversation: dict) -> None:
        """The watched conversation moved (claimed, transferred, resolved, raised): its header
        and actions, re-rendered for this member. Updates that change none of that (a new
        message's timestamp, the unread mark) send nothing."""
        state = _status(conversation)
        if state == self.watched_status:
            return
        self.watched_status = state
        html = await database_sync_to_async(pane_status_html)(
            membership=self.membership, conversation_id=conversation["id"]
        )
        await self.send(text_data=html)

    async def _unwatch(self):
        if self.watching is not None:
            await self.channel_layer.group_discard(
                staff_conversation_group(self.watching), self.channel_name
            )
            self.watching = None

    # --- Events out --------------------------------------------------------------------------
    async def on_event(self, message):
        """The organization's partials as they come; the watched conversation's messages and
        the customer typing, rendered to their partials. Nothing else (JSON for other pages,
        the bot's tokens) is for the console."""
        if await self.member_event(message) or self.closed_with is not None:
            return  # closed by the server: what was already on its way is dropped too
        if message.get("html"):
            # Of the organization's pushed partials the console shows the queue; the others
            # (the bot list, analytics' Now tile) have no element here to swap into.
            if message.get("event") in CONSOLE_PARTIALS:
                await self.send(text_data=message["html"])
            return
        event = message.get("event")
        conversation = message.get("conversation") or {}
        status = event == "conversation.updated" and conversation.get("id") == self.watching
        said = event in ("message.created", "message.updated") and message.get("message")
        typing = event == "typing" and self.watching is not None
        # What the customer says reaches members only: re-read as for a frame, should the
        # membership have gone without its event. (The queue, one partial for the whole
        # organization, is not re-checked per socket; the event closes those.)
        if not (status or said or typing) or not await self.member_allowed():
            return
        if status:
            await self._status_changed(conversation)
        elif said:
            await self.send(text_data=message_html(message=message["message"]))
        else:
            await self.send(
                text_data=typing_html(
                    conversation_id=self.watching,
                    name=message.get("name") or "Customer",
                    active=bool(message.get("active")),
                )
            )


def _status(conversation: dict) -> tuple:
    return tuple(conversation.get(k) for k in ("status", "assigned_agent", "priority", "queue"))


def _decode(text_data) -> dict:
    if text_data is None:
        raise BadFrame("Send frames as JSON text, not binary.")
    if len(text_data.encode()) > MAX_FRAME_BYTES:
        raise BadFrame(f"A frame is at most {MAX_FRAME_BYTES // 1024} KB.")
    try:
        frame = safejson.loads(text_data)
    except ValueError:
        raise BadFrame("A frame is one JSON object.") from None
    if not isinstance(frame, dict) or frame.get("type") not in FRAME_TYPES:
        raise BadFrame('A frame is a JSON object with "type" ping, watch or typing.')
    return frame


def _id(frame: dict) -> int:
    value = frame.get("conversation_id")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadFrame('"conversation_id" must be a conversation\'s number.')
    return value
