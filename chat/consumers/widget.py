"""The widget's socket, `ws/widget/<public_key>/`: docs/chat-protocol.md is its contract.

Like Baserow's consumers it authenticates (the bot's key, the page's origin, the customer's
identity on `hello`), joins the conversation's group and relays that group's events; what is
sent is decided by services. Customer messages are stored by a service and answered by the
chat runner in a worker thread, so this socket keeps receiving while the bot writes, and a
socket that drops mid-answer loses nothing: the answer completes in the database and a
reconnecting `hello` with `after_id` returns it.

Other sites open this socket, so it is not behind the members' own-origin check
(config/routing.py): each bot's allowed origins are checked here, and no cookie is read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db import close_old_connections, transaction
from django.http import Http404

from bots import selectors as bot_selectors
from bots.models import Bot
from config import safejson
from config.origins import origin_is_own, scope_addressed_origin
from config.realtime import conversation_group, staff_conversation_group
from conversations import chat, ratelimit, selectors, services
from conversations.models import Conversation, Message
from conversations.payloads import conversation_payload, message_payload
from escalation import services as escalation_services
from knowledge.embeddings import LOCAL_MINILM, get_embedder

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024
TYPING_MIN_SECONDS = 1.0
# Answers being written in worker threads: referenced here so they are not garbage-collected
# when the socket that started them closes.
_turns: set[asyncio.Future] = set()


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


# One turn at a time per conversation: two quick messages are answered one after the other,
# the second reading the first's answer, instead of two answers streaming into each other.
# conversation id → [its lock, how many turns hold or wait for it]; dropped when none do.
_conversation_turns: dict[int, list] = {}
_conversation_turns_lock = threading.Lock()


def _turn_drain(message: Message) -> None:
    """Run the bot's turn to the end in this worker thread (the events reach the socket
    through the group), then give back the thread's database connection."""
    key = message.conversation_id
    with _conversation_turns_lock:
        entry = _conversation_turns.setdefault(key, [threading.Lock(), 0])
        entry[1] += 1
    try:
        with entry[0]:
            for _event in chat.turn_run(message=message):
                pass
    finally:
        with _conversation_turns_lock:
            entry[1] -= 1
            if entry[1] == 0:
                del _conversation_turns[key]
        # Kept for reuse within CONN_MAX_AGE (production); closed at once where it is 0 (tests).
        close_old_connections()


_warmed_pid: int | None = None


def _warm_embedder() -> None:
    """Load the local embedding model in the background, once per serving process.

    Importing torch and loading MiniLM takes seconds; without this the first customer after
    every start waits for it, and under load everyone queued behind them (`bench_chat`). Done
    on the first widget connection rather than at import: a thread importing torch while a
    test server or a pre-forking host forks would leave the child holding its locks.
    """
    global _warmed_pid
    if not settings.EMBEDDING_PRELOAD or settings.EMBEDDING_MODEL != LOCAL_MINILM:
        return
    if _warmed_pid == os.getpid():
        return
    _warmed_pid = os.getpid()
    threading.Thread(
        target=lambda: get_embedder(LOCAL_MINILM).embed(["warm up"]),
        name="warm-embedder",
        daemon=True,
    ).start()


# A turn holds its thread for the whole answer (embedding, search, an LLM stream that may take
# seconds). A pool of their own keeps answers from starving the short calls of other sockets,
# and bounds how many answers compete for the CPU at once.
_turn_pool: tuple[int, ThreadPoolExecutor] | None = None


def _turn_executor() -> ThreadPoolExecutor:
    global _turn_pool
    # One per process: a pool inherited through fork (daphne test servers, pre-forking hosts)
    # believes its parent's idle threads exist and would never run a task.
    if _turn_pool is None or _turn_pool[0] != os.getpid():
        pool = ThreadPoolExecutor(max_workers=settings.CHAT_TURN_THREADS, thread_name_prefix="turn")
        _turn_pool = (os.getpid(), pool)
    return _turn_pool[1]


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
    started = 0  # conversations this socket started (ratelimit.conversation_start_check)

    async def connect(self):
        _warm_embedder()
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
        customer, conversation = await _db(self._resume)(
            identity, details, conversation_id, channel
        )
        self.identity, self.channel, self.customer = {**identity, **details}, channel, customer
        self.greeted = True
        await self._join(conversation)
        return await _db(self._ready)(after_id)

    def _resume(self, identity, details, conversation_id, channel):
        # Nothing is created for a visitor who only opens the widget: the customer and the
        # conversation come with the first message or request for a person (_first_*).
        customer = services.customer_identify(bot=self.bot, **identity, **details, create=False)
        # Someone else's conversation id is treated as none: the customer's own, or none yet.
        conversation = services.conversation_resume(
            bot=self.bot, customer=customer, conversation_id=conversation_id, channel=channel
        )
        return customer, conversation

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

    async def _started(self, conversation: Conversation) -> None:
        """A frame of this socket started the conversation (or found the one another tab
        started): follow it, and send what its group heard before this socket joined it (the
        conversation, the echo, a handoff notice) so the client learns its id."""
        await self._join(conversation)
        for frame in await _db(self._catch_up)():
            await self.send_json(frame)

    def _catch_up(self) -> list[dict]:
        self.conversation.refresh_from_db()
        messages = selectors.messages_after(
            conversation=self.conversation, after_id=0, limit=selectors.MAX_MESSAGES
        )
        # In the order the group sends them: the messages, then the conversation's status.
        return [
            *({"type": "message.created", "message": message_payload(m)} for m in messages),
            {
                "type": "conversation.updated",
                "conversation": conversation_payload(self.conversation, for_customer=True),
            },
        ]

    def _ready(self, after_id: int) -> dict:
        messages = []
        if self.conversation is not None:
            self.conversation.refresh_from_db()
            messages = selectors.messages_after(
                conversation=self.conversation, after_id=after_id, limit=selectors.MAX_MESSAGES
            )
        return {
            "type": "ready",
            "conversation": (
                conversation_payload(self.conversation, for_customer=True)
                if self.conversation is not None
                else None
            ),
            "messages": [message_payload(m) for m in messages],
            "bot": {
                "name": self.bot.name,
                "greeting": self.bot.greeting,
                "colour": self.bot.colour,
                "position": self.bot.widget_position,
            },
        }

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
            await self._error(_rejection_code(text), str(exc))
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
            # Through asgiref, not loop.run_in_executor: the turn's pushes (async_to_sync) must
            # run on this event loop, where the in-memory channel layer's queues live.
            run_turn = sync_to_async(_turn_drain, thread_sensitive=False, executor=_turn_executor())
            turn = asyncio.ensure_future(run_turn(message))
            _turns.add(turn)
            turn.add_done_callback(_turns.discard)

    def _message_add(self, text: str, client_message_id: str | None):
        ratelimit.chat_message_check(bot_id=self.bot.pk, visitor=f"c{self.customer.pk}", ip=self.ip)
        return services.message_add_user(
            conversation=self.conversation, text=text, client_message_id=client_message_id
        )

    def _first_message(self, text: str, client_message_id: str | None):
        """The message that starts the customer's conversation (and, for a new visitor, the
        customer). A refused one stores neither: checked first, and the customer is created
        in the transaction a rate limit rolls back."""
        services.message_check(text=text, client_message_id=client_message_id)
        self._conversation_start_check()
        with transaction.atomic():
            customer = services.customer_identify(bot=self.bot, **self.identity)
            ratelimit.chat_message_check(bot_id=self.bot.pk, visitor=f"c{customer.pk}", ip=self.ip)
            added = services.message_add_first(
                bot=self.bot,
                customer=customer,
                channel=self.channel,
                text=text,
                client_message_id=client_message_id,
                continue_open=True,
            )
        self.customer = customer
        return added

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
        """ "Talk to a person" before writing anything starts the conversation, in the queue.
        customer_identify locks the customer to the end: a second tab doing the same waits,
        then finds this conversation open and asks in it."""
        self._conversation_start_check()
        with transaction.atomic():
            customer = services.customer_identify(bot=self.bot, **self.identity)
            conversation = services.conversation_resume(
                bot=self.bot, customer=customer, conversation_id=None, channel=self.channel
            ) or services.conversation_start(bot=self.bot, customer=customer, channel=self.channel)
            escalation_services.escalation_request(conversation=conversation, reason=reason)
        self.customer = customer
        return conversation

    def _conversation_start_check(self) -> None:
        ratelimit.conversation_start_check(ip=self.ip, started_on_socket=self.started)
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
            await _db(self._feedback)(message_id, value)
        except Http404:
            raise BadFrame(f"There is no message {message_id} in this conversation.") from None
        except ValueError as exc:
            raise BadFrame(str(exc)) from None

    def _feedback(self, message_id: int, value) -> None:
        if self.conversation is None:
            raise Http404
        message = selectors.message_get_for_conversation(
            conversation=self.conversation, message_id=message_id
        )
        services.message_feedback(message=message, value=value)

    async def on_typing(self, content):
        """The customer is writing: told to the agents watching, only while a person is in
        the conversation (the bot needs no warning)."""
        active = content.get("active")
        if not isinstance(active, bool):
            raise BadFrame('"active" is true or false.')
        if self.conversation is None or self.conversation.status not in (
            Conversation.Status.WAITING,
            Conversation.Status.ACTIVE,
        ):
            return
        # A widget sends one "typing" per 2.5 s; anything faster is dropped, not relayed.
        now = time.monotonic()
        if active and now - self.typing_at < TYPING_MIN_SECONDS:
            return
        self.typing_at = now if active else 0.0
        await self.channel_layer.group_send(
            staff_conversation_group(self.conversation.pk),
            {
                "type": "on.event",
                "event": "typing",
                "name": self.customer.name or "Customer",
                "active": active,
            },
        )

    async def on_rate(self, content):
        if self.conversation is None:
            raise BadFrame("There is no conversation yet to rate.")
        try:
            await _db(services.conversation_rate)(
                conversation=self.conversation, score=content.get("score")
            )
        except ValueError as exc:
            raise BadFrame(str(exc)) from None

    # --- Events out --------------------------------------------------------------------------
    async def on_event(self, message):
        # Group events as protocol frames. `html` fragments are for the members' console.
        frame = {k: v for k, v in message.items() if k not in {"type", "event", "html"}}
        if message["event"] == "conversation.updated" and self.conversation is not None:
            # Kept current for `typing`, which is relayed only while a person is here.
            status = (frame.get("conversation") or {}).get("status")
            if status in Conversation.Status.values:
                self.conversation.status = status
        await self.send_json({"type": message["event"], **frame})

    async def _error(self, code: str, text: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": text})


FRAME_TYPES = {"hello", "message", "escalate", "leave_email", "feedback", "rate", "typing"}
# Counted against the request limits; messages have their own, typing is throttled per socket
# (TYPING_MIN_SECONDS) and ping does no work.
COUNTED_FRAMES = {"hello", "escalate", "leave_email", "feedback", "rate"}


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


def _rejection_code(text: str) -> str:
    """The protocol's code for a message the service refused (its sentence says why)."""
    if len(text.replace("\x00", "").strip()) > settings.CHAT_MAX_MESSAGE_CHARS:
        return "too_long"
    if not text.replace("\x00", "").strip():
        return "empty"
    return "closed"
