"""The widget's socket, `ws/widget/<public_key>/`: docs/chat-protocol.md is its contract.

Like Baserow's consumers it authenticates (the bot's key, the page's origin, the customer's
identity on `hello`), joins the conversation's group and relays that group's events; what is
sent is decided by services (chat.services, chat.selectors, and the floors below). Customer
messages are stored by a service and answered by the one turn scheduler (chat.turns) in a worker
thread, so this socket keeps receiving while the bot writes, and a socket that drops mid-answer
loses nothing: the answer completes in the database and a reconnecting `hello` with `after_id`
returns it.

Other sites open this socket, so it is not behind the members' own-origin check
(config/routing.py): each bot's allowed origins are checked here, and no cookie is read.
"""

from __future__ import annotations

import logging
import time

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import close_old_connections
from django.http import Http404

from bots import selectors as bot_selectors
from bots.models import Bot
from chat import ratelimit, turns
from chat import selectors as chat_selectors
from chat import services as chat_services
from config import safejson
from config.origins import origin_is_own, scope_addressed_origin
from config.realtime import abroadcast, conversation_group, staff_conversation_group
from conversations import services
from conversations.models import Conversation
from conversations.payloads import message_payload
from escalation import services as escalation_services

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024
TYPING_MIN_SECONDS = 1.0


class BadFrame(ValueError):
    """A frame the protocol does not allow: answered with `error bad_frame`."""


def origin_allowed(bot: Bot, origin: str | None, *, addressed) -> bool:
    """The bot's allowed origins, plus this server's own pages (the Playground, the full-page
    chat): exactly this server's origin, `addressed` being the one the request came to
    (config.origins)."""
    return bot.origin_allowed(origin) or origin_is_own(origin, addressed=addressed)


def _db(func):
    """sync_to_async for ORM work that closes obsolete connections inside the call itself.

    channels' database_sync_to_async does that around the call, outside the context the call
    runs in, and there (asgiref 3.13) connections opened from a consumer's task were seen to
    stay open: with CONN_MAX_AGE=0 the test database could not even be dropped.
    """

    def closing(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    # Not thread-sensitive: each socket's short ORM calls run in the shared pool instead of
    # queueing behind every other socket's on one thread (500 hellos took 10 s that way).
    return sync_to_async(closing, thread_sensitive=False)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


class WidgetConsumer(AsyncJsonWebsocketConsumer):
    bot: Bot | None = None
    # After `hello`: who the customer says they are (kept to create them with their first
    # message) and, once they exist, the customer and their conversation.
    greeted = False
    identity: dict | None = None
    channel: str = Conversation.Channel.WIDGET
    customer = None
    conversation = None
    group: str | None = None
    ip: str | None = None
    own_page = False  # opened from one of this server's own pages (config.origins)
    typing_at = 0.0
    person_here = False  # kept current from conversation.updated, for typing
    started = 0  # conversations this socket started (ratelimit.conversation_start_check)

    async def connect(self):
        turns.warm_up()
        public_key = self.scope["url_route"]["kwargs"]["public_key"]
        self.bot = await _db(bot_selectors.bot_for_public_key)(public_key=public_key)
        # Accepted, then closed: a handshake refused outright reaches the browser as 1006 with
        # no code, and the widget must know to stop reconnecting.
        await self.accept()
        if self.bot is None:
            await self.close(code=4404)
            return
        origin, addressed = _header(self.scope, b"origin"), scope_addressed_origin(self.scope)
        if not origin_allowed(self.bot, origin, addressed=addressed):
            await self.close(code=4403)
            return
        self.own_page = origin_is_own(origin, addressed=addressed)
        client = self.scope.get("client") or [None]
        self.ip = ratelimit.client_ip(
            remote_addr=client[0], forwarded_for=_header(self.scope, b"x-forwarded-for")
        )

    async def disconnect(self, code):
        # The turn running for this socket, if any, is not cancelled: it completes in the
        # database and the customer gets it on reconnect.
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    # --- Frames in ---------------------------------------------------------------------------
    async def receive(self, text_data=None, bytes_data=None):
        # Decoded here rather than by AsyncJsonWebsocketConsumer, whose decoding error would
        # end the socket: every bad frame is answered and the socket stays open.
        try:
            content = self._decode(text_data, bytes_data)
            kind = content["type"]
            if kind == "ping":
                await self.send_json({"type": "pong"})
                return
            handler = getattr(self, f"on_{kind}", None) if kind in FRAME_TYPES else None
            if handler is None:
                raise BadFrame(f"Unknown frame type {kind!r}.")
            if kind != "hello" and not self.greeted:
                await self._error("not_ready", "Send hello first.")
                return
            if kind in COUNTED_FRAMES:
                await _db(ratelimit.chat_request_check)(
                    bot_id=self.bot.pk, visitor=self._visitor_key(content), ip=self.ip
                )
            await handler(content)
        except ratelimit.RateLimited as exc:
            await self._error("rate_limited", exc.message)
        except BadFrame as exc:
            await self._error("bad_frame", str(exc))

    def _visitor_key(self, content: dict) -> str:
        """Whom a request is counted against: the customer, once there is one; before that
        (hello) the visitor the frame names, clipped: it is the client's word, and the limit
        per client IP is what holds a client that invents visitors."""
        if self.customer is not None:
            return f"c{self.customer.pk}"
        identity = content if not self.greeted else (self.identity or {})
        name = identity.get("user_id") or identity.get("visitor_id")
        return f"v{str(name)[:64]}"

    def _decode(self, text_data, bytes_data) -> dict:
        if text_data is None:
            raise BadFrame("Send frames as JSON text, not binary.")
        if len(text_data) > MAX_FRAME_BYTES or len(text_data.encode()) > MAX_FRAME_BYTES:
            raise BadFrame(f"A frame is at most {MAX_FRAME_BYTES // 1024} KB.")
        try:
            content = safejson.loads(text_data)
        except ValueError:
            raise BadFrame("A frame is one JSON object.") from None
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            raise BadFrame('A frame is a JSON object with a "type".')
        return content

    async def on_hello(self, content):
        identity = {
            field: _text(content, field) for field in ("visitor_id", "user_id", "user_hash")
        }
        if not identity["visitor_id"] and not identity["user_id"]:
            raise BadFrame('hello needs "visitor_id" (or a signed "user_id").')
        details = {field: _text(content, field) for field in ("name", "email")}
        conversation_id = _integer(content, "conversation_id")
        after_id = _integer(content, "after_id") or 0
        channel = _text(content, "channel") or Conversation.Channel.WIDGET
        if channel not in (Conversation.Channel.WIDGET, Conversation.Channel.PLAYGROUND):
            raise BadFrame('"channel" is "widget" or "playground".')
        if channel == Conversation.Channel.PLAYGROUND and not self.own_page:
            # Test conversations are marked as such in the console; a customer's site must not
            # be able to pass its chats off as tests.
            raise BadFrame("The playground channel is only for this server's own pages.")
        try:
            ready = await self._hello(identity, details, conversation_id, after_id, channel)
        except services.CustomerIdentityError as exc:
            await self._error("identity", str(exc))
            return
        await self.send_json(ready)

    async def _hello(self, identity, details, conversation_id, after_id, channel) -> dict:
        identity = {**identity, **details}
        customer, conversation = await _db(chat_services.widget_resume)(
            bot=self.bot, identity=identity, conversation_id=conversation_id, channel=channel
        )
        self.identity, self.channel, self.customer = identity, channel, customer
        self.greeted = True
        await self._join(conversation)
        return await _db(chat_selectors.widget_ready)(
            bot=self.bot, conversation=self.conversation, after_id=after_id
        )

    async def _join(self, conversation: Conversation | None) -> None:
        """Follow this conversation's events (None: no conversation yet), and stop following
        the one before."""
        group = conversation_group(conversation.pk) if conversation else None
        if group != self.group:
            if self.group:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            # Joined before reading the messages: an event in between is delivered after
            # `ready` (consumers handle one message at a time) rather than lost; clients keep
            # messages by id, so a repeat only replaces.
            if group:
                await self.channel_layer.group_add(group, self.channel_name)
        self.conversation, self.group = conversation, group
        self.person_here = conversation is not None and _person_here(
            conversation.status, conversation.assigned_agent_id is not None
        )

    async def _started(self, conversation: Conversation) -> None:
        """A frame of this socket started the conversation (or found the one another tab
        started): follow it, and send what its group heard before this socket joined it (the
        conversation, the echo, a handoff notice) so the client learns its id."""
        await self._join(conversation)
        for frame in await _db(chat_selectors.widget_catch_up)(conversation=self.conversation):
            await self.send_json(frame)

    async def on_message(self, content):
        text = content.get("text")
        if not isinstance(text, str):
            raise BadFrame('A message frame needs "text".')
        client_message_id = content.get("client_message_id")
        if client_message_id is not None and not isinstance(client_message_id, str):
            raise BadFrame('"client_message_id" must be text.')
        first = self.conversation is None
        try:
            if first:
                message, created = await _db(self._first_message)(text, client_message_id)
            else:
                message, created = await _db(self._message_add)(text, client_message_id)
        except ratelimit.RateLimited as exc:
            await self._error("rate_limited", exc.message)
            return
        except services.MessageRejected as exc:
            await self._error(chat_services.message_rejection_code(text), str(exc))
            return
        if first:
            # The echo is among the frames caught up on.
            await self._started(message.conversation)
            if not created:
                return
        elif not created:
            # A resend after a reconnect: stored once and answered once, but this client still
            # waits for its echo.
            await self.send_json({"type": "message.created", "message": message_payload(message)})
            return
        if self.conversation.bot_may_answer:
            # Answered in the conversation's line (chat.turns); its events come back through
            # the group this socket follows.
            turns.turn_submit(message=message)

    def _message_add(self, text: str, client_message_id: str | None):
        return chat_services.widget_message_add(
            bot=self.bot,
            customer=self.customer,
            conversation=self.conversation,
            text=text,
            client_message_id=client_message_id,
            ip=self.ip,
        )

    def _first_message(self, text: str, client_message_id: str | None):
        self._start_check(text=text, client_message_id=client_message_id)
        self.customer, message, created = chat_services.widget_message_first(
            bot=self.bot,
            identity=self.identity,
            channel=self.channel,
            text=text,
            client_message_id=client_message_id,
            ip=self.ip,
        )
        return message, created

    async def on_escalate(self, content):
        reason = "The customer asked for a person."
        try:
            if self.conversation is None:
                await self._started(await _db(self._first_escalate)(reason))
                return
            await _db(escalation_services.escalation_request)(
                conversation=self.conversation, reason=reason
            )
        except services.ConversationStateError as exc:
            await self._error("closed", str(exc))

    def _first_escalate(self, reason: str) -> Conversation:
        self._start_check()
        self.customer, conversation = chat_services.widget_escalate_first(
            bot=self.bot, identity=self.identity, channel=self.channel, reason=reason
        )
        return conversation

    def _start_check(self, **first_message) -> None:
        """This socket may start one more conversation: counted from here on, whether or not
        the start then succeeds (ratelimit.conversation_start_check)."""
        chat_services.widget_start_check(
            ip=self.ip, started_on_socket=self.started, **first_message
        )
        self.started += 1

    async def on_leave_email(self, content):
        email = content.get("email")
        if not isinstance(email, str):
            raise BadFrame('A leave_email frame needs "email".')
        if self.conversation is None:
            raise BadFrame("There is no conversation yet to answer by e-mail.")
        try:
            await _db(services.customer_leave_email)(conversation=self.conversation, email=email)
        except services.ConversationStateError as exc:
            await self._error("closed", str(exc))
        except services.CustomerIdentityError as exc:
            await self._error("bad_email", str(exc))

    async def on_feedback(self, content):
        message_id = _integer(content, "message_id", required=True)
        value = content.get("value")
        try:
            await _db(chat_services.widget_feedback)(
                conversation=self.conversation, message_id=message_id, value=value
            )
        except Http404:
            raise BadFrame(f"There is no message {message_id} in this conversation.") from None
        except ValueError as exc:
            raise BadFrame(str(exc)) from None

    async def on_typing(self, content):
        """The customer is writing: told to the agents watching, only while a person is in
        the conversation (the bot needs no warning)."""
        active = content.get("active")
        if not isinstance(active, bool):
            raise BadFrame('"active" is true or false.')
        if self.conversation is None or not self.person_here:
            return
        # A widget sends one "typing" per 2.5 s; anything faster is dropped, not relayed.
        now = time.monotonic()
        if active and now - self.typing_at < TYPING_MIN_SECONDS:
            return
        self.typing_at = now if active else 0.0
        await abroadcast(
            staff_conversation_group(self.conversation.pk),
            "typing",
            name=self.customer.name or "Customer",
            active=active,
        )

    async def on_rate(self, content):
        if self.conversation is None:
            raise BadFrame("There is no conversation yet to rate.")
        comment = _text(content, "comment")
        try:
            await _db(services.conversation_rate)(
                conversation=self.conversation, score=content.get("score"), comment=comment
            )
        except services.ConversationStateError as exc:
            await self._error("not_allowed", str(exc))
        except ValueError as exc:
            raise BadFrame(str(exc)) from None

    async def on_confirm(self, content):
        """The customer's Yes or No to "Did that answer your question?"."""
        message_id = _integer(content, "message_id", required=True)
        try:
            await _db(chat_services.answer_confirm)(
                conversation=self.conversation,
                message_id=message_id,
                answered=content.get("answered"),
            )
        except services.ConversationStateError as exc:
            await self._error("not_allowed", str(exc))
        except ValueError as exc:
            raise BadFrame(str(exc)) from None

    async def on_action_confirm(self, content):
        """Confirm or Cancel on an action's confirmation card: {call_id, confirmed}. The result
        comes back as a bot message (and `tool_call` events) through the group."""
        call_id = _integer(content, "call_id", required=True)
        confirmed = content.get("confirmed")
        if not isinstance(confirmed, bool):
            raise BadFrame('"confirmed" is true or false.')
        try:
            await _db(chat_services.action_confirm)(
                conversation=self.conversation, call_id=call_id, confirmed=confirmed
            )
        except services.ConversationStateError as exc:
            await self._error("not_allowed", str(exc))

    # --- Events out --------------------------------------------------------------------------
    async def on_event(self, message):
        # Group events as protocol frames. `html` fragments are for the members' console.
        frame = {k: v for k, v in message.items() if k not in {"type", "event", "html"}}
        if message["event"] == "conversation.updated" and self.conversation is not None:
            # Kept current for `typing`, which is relayed only while a person is here.
            conversation = frame.get("conversation") or {}
            status = conversation.get("status")
            if status in Conversation.Status.values:
                self.conversation.status = status
                self.person_here = _person_here(status, bool(conversation.get("assigned_agent")))
        await self.send_json({"type": message["event"], **frame})

    async def _error(self, code: str, text: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": text})


FRAME_TYPES = {
    "hello",
    "message",
    "escalate",
    "leave_email",
    "feedback",
    "confirm",
    "rate",
    "typing",
    "action_confirm",
}
# Counted against the request limits; messages have their own, typing is throttled per socket
# (TYPING_MIN_SECONDS) and ping does no work.
COUNTED_FRAMES = {
    "hello",
    "escalate",
    "leave_email",
    "feedback",
    "confirm",
    "rate",
    "action_confirm",
}


def _person_here(status: str, has_agent: bool) -> bool:
    """A person is in the conversation (so the customer's typing is relayed): in the queue,
    with an agent, or awaiting the customer after an agent's reply."""
    Status = Conversation.Status
    return status in (Status.WAITING, Status.ACTIVE) or (status == Status.AWAITING and has_agent)


def _text(content: dict, field: str) -> str:
    value = content.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadFrame(f'"{field}" must be text.')
    return value


def _integer(content: dict, field: str, *, required: bool = False) -> int | None:
    value = content.get(field)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadFrame(f'"{field}" must be a whole number.')
    return value
