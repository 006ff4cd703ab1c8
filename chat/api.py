"""The HTTP chat API, /api/v1/: for a site's own server, authenticated by the bot's secret key.

`POST /api/v1/chat` stores the customer's message and streams the bot's answer as Server-Sent
Events, through the same chat runner and turn scheduler as the widget's socket (chat.turns: a
conversation's messages are answered one after the other, whichever channel they came by;
docs/chat-protocol.md). The key
proves the caller is the site's server, so a `customer.user_id` it sends is trusted as a
verified identity without a `user_hash` (the widget, which runs in anyone's browser, must sign
it). Errors are JSON, `{"error": "<a sentence>", "code": "<protocol code>"}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from functools import wraps

from asgiref.sync import sync_to_async
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from bots import selectors as bot_selectors
from bots.models import Bot
from chat import ratelimit, turns
from chat import services as chat_services
from config import safejson
from conversations import selectors, services
from conversations.models import Message
from conversations.payloads import conversation_payload, message_payload
from escalation import services as escalation_services
from escalation.models import Trigger

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, code: str = "bad_request", headers: dict | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers = headers or {}


def _error(status: int, message: str, code: str) -> JsonResponse:
    return JsonResponse({"error": message, "code": code}, status=status)


def _bot_for_key(request) -> Bot | None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return bot_selectors.bot_for_secret_key(secret_key=key.strip())


def api_view(view):
    """Bot-key authentication and JSON errors for an API view, which gets the bot."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        bot = _bot_for_key(request)
        if bot is None:
            return _error(
                401, "Authenticate with 'Authorization: Bearer <bot secret key>'.", "unauthorized"
            )
        try:
            return view(request, bot, *args, **kwargs)
        except ApiError as exc:
            response = _error(exc.status, exc.message, exc.code)
            for name, value in exc.headers.items():
                response[name] = value
            return response
        except Http404:
            return _error(404, "No such conversation or message for this bot.", "not_found")

    return wrapper


def _body(request) -> dict:
    try:
        body = safejson.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def _id(body: dict, field: str, *, required: bool = True) -> int | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f'"{field}" must be a whole number.')
    return value


# --- POST /api/v1/chat -------------------------------------------------------------------------
@csrf_exempt
@require_POST
@api_view
def chat_send(request, bot):
    body = _body(request)
    text = body.get("message")
    if not isinstance(text, str):
        raise ApiError(400, '"message" is required: the customer\'s text.')
    client_message_id = body.get("client_message_id")
    if client_message_id is not None and not isinstance(client_message_id, str):
        raise ApiError(400, '"client_message_id" must be text.')
    conversation_id = _id(body, "conversation_id", required=False)
    conversation = None
    if conversation_id is not None:
        conversation = selectors.conversation_get_for_bot(bot=bot, conversation_id=conversation_id)
        customer = conversation.customer
    else:
        # Before the customer is identified (maybe created): a refused first message stores
        # neither a customer nor a conversation.
        try:
            services.message_check(text=text, client_message_id=client_message_id)
        except services.MessageRejected as exc:
            raise _rejected(text, exc) from None
        customer = _customer(bot, body.get("customer"))
    # Per customer only: every request comes from the site's server, so its IP says nothing
    # about who is sending.
    try:
        ratelimit.chat_message_check(bot_id=bot.pk, visitor=f"c{customer.pk}")
    except ratelimit.RateLimited as exc:
        retry = {"Retry-After": str(exc.retry_after)}
        raise ApiError(429, exc.message, "rate_limited", headers=retry) from None
    try:
        if conversation is None:
            # The conversation starts with its first message, in one transaction.
            message, created = services.message_add_first(
                bot=bot,
                customer=customer,
                channel="api",
                text=text,
                client_message_id=client_message_id,
            )
        else:
            message, created = services.message_add_user(
                conversation=conversation, text=text, client_message_id=client_message_id
            )
    except services.MessageRejected as exc:
        raise _rejected(text, exc) from None
    if created:
        events = _turn_events(message)
    else:
        # A retried request: the message is stored once and answered once.
        events = _answer_events(message)
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx would otherwise hold the tokens back
    return response


def _customer(bot: Bot, data):
    if data is None:
        # No customer named: a new anonymous one for this conversation.
        data = {"visitor_id": f"api-{uuid.uuid4().hex}"}
    if not isinstance(data, dict):
        raise ApiError(400, '"customer" must be an object with "visitor_id" or "user_id".')
    fields = {}
    for field in ("visitor_id", "user_id", "name", "email"):
        value = data.get(field, "")
        if not isinstance(value, str):
            raise ApiError(400, f'"customer.{field}" must be text.')
        fields[field] = value
    user_hash = ""
    if fields["user_id"]:
        # Trusted: only the site's server holds the key that authenticated this request.
        user_hash = services.identity_signature(bot=bot, user_id=fields["user_id"])
    try:
        return services.customer_identify(bot=bot, user_hash=user_hash, **fields)
    except services.CustomerIdentityError as exc:
        raise ApiError(400, str(exc), "identity") from None


def _rejected(text: str, exc: services.MessageRejected) -> ApiError:
    code = chat_services.message_rejection_code(text)
    return ApiError({"too_long": 413, "closed": 409}.get(code, 400), str(exc), code)


def _sse(event: dict) -> bytes:
    data = {k: v for k, v in event.items() if k != "type"}
    return f"event: {event['type']}\ndata: {json.dumps(data)}\n\n".encode()


async def _turn_events(message: Message) -> AsyncIterator[bytes]:
    """The turn's events as they come. The turn runs in the conversation's line (chat.turns),
    after the turns of earlier messages, and goes on to the end if the client disconnects: the
    answer is in the database either way."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def emit(event: dict | None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, event)
        except RuntimeError:
            pass  # the loop is gone with its client; the turn still completes

    turn = turns.turn_submit(message=message, emit=emit)
    # After the turn's last event: those were queued from its thread before it ended.
    turn.add_done_callback(lambda _turn: queue.put_nowait(None))
    answered = False
    while (event := await queue.get()) is not None:
        answered = True
        yield _sse(event)
    if not answered:
        # A person has the conversation: they answer, not the bot.
        yield _sse(_silent_done(message))


async def _answer_events(message: Message) -> AsyncIterator[bytes]:
    answer = await sync_to_async(selectors.message_answer)(message=message)
    if answer is None:
        yield _sse(_silent_done(message))
        return
    yield _sse(
        {
            "type": "done",
            "conversation_id": message.conversation_id,
            "message_id": answer.pk,
            "outcome": answer.outcome if answer.state == Message.State.COMPLETE else "",
            "text": answer.text if answer.state == Message.State.COMPLETE else "",
        }
    )


def _silent_done(message: Message) -> dict:
    return {
        "type": "done",
        "conversation_id": message.conversation_id,
        "message_id": None,
        "outcome": "",
        "text": "",
    }


# --- The rest ------------------------------------------------------------------------------------
@csrf_exempt
@require_POST
@api_view
def escalate(request, bot):
    body = _body(request)
    conversation = selectors.conversation_get_for_bot(
        bot=bot, conversation_id=_id(body, "conversation_id")
    )
    reason = body.get("reason") or "Escalated through the API."
    if not isinstance(reason, str):
        raise ApiError(400, '"reason" must be text.')
    try:
        escalation_services.escalation_request(
            conversation=conversation, reason=reason, trigger=Trigger.API
        )
    except services.ConversationStateError as exc:
        raise ApiError(409, str(exc), "closed") from None
    return JsonResponse({"conversation": conversation_payload(conversation)})


@csrf_exempt
@require_GET
@api_view
def conversation_detail(request, bot, conversation_id):
    conversation = selectors.conversation_get_for_bot(bot=bot, conversation_id=conversation_id)
    try:
        after_id = int(request.GET.get("after_id", 0))
    except ValueError:
        raise ApiError(400, "after_id must be a whole number.") from None
    messages = selectors.messages_after(
        conversation=conversation, after_id=after_id, limit=selectors.MAX_MESSAGES
    )
    return JsonResponse(
        {
            "conversation": conversation_payload(conversation),
            "messages": [message_payload(m) for m in messages],
        }
    )


@csrf_exempt
@require_POST
@api_view
def feedback(request, bot):
    """Thumbs on an answer ({message_id, value}), or the conversation's rating once it is
    resolved ({conversation_id, score, comment?}), counted against the customer's request
    limit like the widget's frames."""
    body = _body(request)
    try:
        if "message_id" in body:
            message = selectors.message_get_for_bot(bot=bot, message_id=_id(body, "message_id"))
            _request_check(bot, message.conversation.customer_id)
            message = services.message_feedback(message=message, value=body.get("value"))
            return JsonResponse({"message": message_payload(message)})
        if "conversation_id" in body:
            conversation = selectors.conversation_get_for_bot(
                bot=bot, conversation_id=_id(body, "conversation_id")
            )
            _request_check(bot, conversation.customer_id)
            conversation = services.conversation_rate(
                conversation=conversation,
                score=body.get("score"),
                comment=body.get("comment") or "",
            )
            return JsonResponse({"conversation": conversation_payload(conversation)})
    except services.ConversationStateError as exc:
        raise ApiError(409, str(exc), "not_allowed") from None
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    raise ApiError(400, 'Send {"message_id", "value"} or {"conversation_id", "score", "comment"?}.')


@csrf_exempt
@require_POST
@api_view
def confirm(request, bot):
    """The customer's answer to "Did that answer your question?" on the bot's latest answer:
    {conversation_id, message_id, answered: true|false} → {conversation}."""
    body = _body(request)
    conversation = selectors.conversation_get_for_bot(
        bot=bot, conversation_id=_id(body, "conversation_id")
    )
    message_id = _id(body, "message_id")
    _request_check(bot, conversation.customer_id)
    try:
        chat_services.answer_confirm(
            conversation=conversation, message_id=message_id, answered=body.get("answered")
        )
    except services.ConversationStateError as exc:
        raise ApiError(409, str(exc), "not_allowed") from None
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    conversation.refresh_from_db()
    return JsonResponse({"conversation": conversation_payload(conversation)})


def _request_check(bot: Bot, customer_id: int) -> None:
    """The widget's request limit, per customer (every API call comes from the site's server,
    so its address says nothing about who is asking)."""
    try:
        ratelimit.chat_request_check(bot_id=bot.pk, visitor=f"c{customer_id}")
    except ratelimit.RateLimited as exc:
        retry = {"Retry-After": str(exc.retry_after)}
        raise ApiError(429, exc.message, "rate_limited", headers=retry) from None


@csrf_exempt
@require_POST
@api_view
def action_confirm(request, bot):
    """Confirm or Cancel on an action's confirmation card, for clients of the event stream:
    {conversation_id, call_id, confirmed: true|false} → {message, tool_calls}. The call_id is
    the `action_confirm.call_id` of the bot message's extras; another conversation's is
    refused, and so is a second answer."""
    body = _body(request)
    conversation = selectors.conversation_get_for_bot(
        bot=bot, conversation_id=_id(body, "conversation_id")
    )
    call_id = _id(body, "call_id")
    _request_check(bot, conversation.customer_id)
    events: list[dict] = []
    try:
        message = chat_services.action_confirm(
            conversation=conversation,
            call_id=call_id,
            confirmed=body.get("confirmed"),
            emit=events.append,
        )
    except services.ConversationStateError as exc:
        raise ApiError(409, str(exc), "not_allowed") from None
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    tool_calls = [{k: v for k, v in e.items() if k != "type"} for e in events]
    return JsonResponse({"message": message_payload(message), "tool_calls": tool_calls})
