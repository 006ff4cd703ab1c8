"""The chat channels' writes: what a widget socket's frames do, composed of the conversations'
and escalation's services with the chat's own rate limits. The socket only authenticates,
joins groups and relays; it calls these in a worker thread.

Each takes what the socket knows (the bot, the customer's identity, the client's address) and
raises what the protocol answers with an error frame: ratelimit.RateLimited,
conversations.services.MessageRejected, CustomerIdentityError or ConversationStateError.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.http import Http404

from actions.services import action_run
from bots.models import Bot
from chat import ratelimit
from config import realtime
from conversations import selectors, services
from conversations.models import Conversation, Customer, Message
from conversations.pipeline import actions as action_steps
from conversations.pipeline.answer import BLOCKED_TEXT
from conversations.pipeline.classify import OFFER_QUESTION
from conversations.pipeline.guardrails import Guard
from escalation import services as escalation_services
from escalation.models import Trigger


def widget_resume(
    *, bot: Bot, identity: dict, conversation_id: int | None, channel: str
) -> tuple[Customer | None, Conversation | None]:
    """The customer a `hello` names and their conversation to resume, if any. Nothing is
    created for a visitor who only opens the widget: the customer and the conversation come
    with the first message or request for a person (widget_message_first, widget_escalate_first).
    Someone else's conversation id is treated as none."""
    customer = services.customer_identify(bot=bot, **identity, create=False)
    conversation = services.conversation_resume(
        bot=bot, customer=customer, conversation_id=conversation_id, channel=channel
    )
    return customer, conversation


def widget_message_add(
    *,
    bot: Bot,
    customer: Customer,
    conversation: Conversation,
    text: str,
    client_message_id: str | None,
    ip: str | None,
) -> tuple[Message, bool]:
    """A customer message in their conversation, counted against the message limits; a resend
    (same client_message_id) is the stored message, `created` False."""
    ratelimit.chat_message_check(bot_id=bot.pk, visitor=f"c{customer.pk}", ip=ip)
    return services.message_add_user(
        conversation=conversation, text=text, client_message_id=client_message_id
    )


def widget_start_check(
    *,
    ip: str | None,
    started_on_socket: int,
    text: str | None = None,
    client_message_id: str | None = None,
) -> None:
    """Before a socket starts a conversation: its first message, if it starts with one, is one
    the service would store, and the socket and the client's address are within their starts
    (ratelimit.conversation_start_check). Nothing is stored either way."""
    if text is not None:
        services.message_check(text=text, client_message_id=client_message_id)
    ratelimit.conversation_start_check(ip=ip, started_on_socket=started_on_socket)


def widget_message_first(
    *, bot: Bot, identity: dict, channel: str, text: str, client_message_id: str | None, ip
) -> tuple[Customer, Message, bool]:
    """The message that starts the customer's conversation (and, for a new visitor, the
    customer), after widget_start_check. A refused one stores neither: the customer is created
    in the transaction a rate limit rolls back."""
    with transaction.atomic():
        customer = services.customer_identify(bot=bot, **identity)
        ratelimit.chat_message_check(bot_id=bot.pk, visitor=f"c{customer.pk}", ip=ip)
        message, created = services.message_add_first(
            bot=bot,
            customer=customer,
            channel=channel,
            text=text,
            client_message_id=client_message_id,
            continue_open=True,
        )
    return customer, message, created


def widget_escalate_first(
    *, bot: Bot, identity: dict, channel: str, reason: str
) -> tuple[Customer, Conversation]:
    """ "Talk to a person" before writing anything starts the conversation, in the queue (after
    widget_start_check). customer_identify locks the customer to the end: a second tab doing
    the same waits, then finds this conversation open and asks in it."""
    with transaction.atomic():
        customer = services.customer_identify(bot=bot, **identity)
        conversation = services.conversation_resume(
            bot=bot, customer=customer, conversation_id=None, channel=channel
        ) or services.conversation_start(bot=bot, customer=customer, channel=channel)
        escalation_services.escalation_request(conversation=conversation, reason=reason)
    return customer, conversation


def widget_feedback(*, conversation: Conversation | None, message_id: int, value) -> Message:
    """The customer's thumbs on an answer of their own conversation; Http404 for any other
    message (or before there is a conversation), ValueError for a value that is none."""
    if conversation is None:
        raise Http404
    message = selectors.message_get_for_conversation(
        conversation=conversation, message_id=message_id
    )
    return services.message_feedback(message=message, value=value)


def message_rejection_code(text: str) -> str:
    """The protocol's code for a message the conversations' service refused (its sentence says
    why), for the socket's error frame and the API's error alike."""
    text = text.replace("\x00", "").strip()
    if len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
        return "too_long"
    return "closed" if text else "empty"


def answer_confirm(*, conversation: Conversation | None, message_id: int, answered) -> None:
    """The customer's answer to "Did that answer your question?" on the bot's answer
    `message_id`: yes resolves the conversation as resolved by the bot (then the rating is
    asked); no is what the bot's `not_answered` says (offer a person, or hand off). ValueError
    for an `answered` that is not true or false; ConversationStateError when there is no such
    answer to confirm (not the latest, already confirmed, the conversation moved on)."""
    if not isinstance(answered, bool):
        raise ValueError('"answered" is true or false.')
    if conversation is None:
        raise services.ConversationStateError("There is no conversation yet.")
    if answered:
        services.conversation_resolve_by_customer(conversation=conversation, message_id=message_id)
    else:
        escalation_services.conversation_answer_rejected(
            conversation=conversation, message_id=message_id
        )


def action_confirm(
    *, conversation: Conversation | None, call_id: int, confirmed, emit=None
) -> Message:
    """The customer's Confirm or Cancel on a confirmation card ("Refund $20.00 for order
    1234?"), from the widget's `action_confirm` frame or the API.

    The call moves on once, in its own conversation only (conversations.services.
    action_call_decide refuses a double tap and another conversation's call). Cancel: "OK, I
    won't do that." Confirm: the action runs with confirmed=True, the verification and the
    policy limit checked again by action_run, its progress and outcome pushed as `tool_call`
    events (and given to `emit`, the API's), and its result posted as the bot's message: the
    rendered template, a failure with the offer of a person, or a handoff with the details.
    Returns the bot's message.
    """
    if conversation is None:
        raise services.ConversationStateError("There is no conversation yet.")
    call = services.action_call_decide(
        conversation=conversation, call_id=call_id, confirmed=confirmed
    )
    if not confirmed:
        reply = action_steps.cancelled_reply()
        return services.action_result_post(
            call=call,
            text=reply.text,
            outcome=reply.outcome,
            trace={"category": "action", "answer_method": "action", "cancelled_call": call.pk},
        )

    def push(event: dict) -> None:
        tool_call_broadcast(
            conversation_id=conversation.pk, message_id=call.message_id, event=event
        )
        if emit is not None:
            emit(event)

    trace: dict = {"category": "action", "answer_method": "action", "confirmed_call": call.pk}
    action = call.action
    if action is None or not action.enabled:
        # Deleted or switched off since the card was shown: nothing runs.
        trace["actions"] = [{"name": call.name, "outcome": "invalid", "error": "action gone"}]
        return services.action_result_post(
            call=call,
            text=f"{action_steps.CANT_CHECK} {OFFER_QUESTION}",
            outcome=Message.Outcome.HANDOFF_PROPOSED,
            record={"name": call.name, "outcome": "invalid", "error": "action gone"},
            extras={"offer_human": True},
            trace=trace,
            requires_followup=True,
        )
    push(action_steps.running_event(action, call.arguments))
    result = action_run(
        action=action,
        arguments=call.arguments,
        user_id=conversation.customer.external_id or None,
        confirmed=True,
        # The call's own key: whatever sends this confirmed call again sends the same one.
        idempotency_key=f"call-{call.pk}",
    )
    record = result.record()
    push(action_steps.done_event(result))
    trace["actions"] = [record]
    if result.outcome == "failed":
        trace["action_failed"] = True
    reply = action_steps.reply_for(result, trace)
    guard = Guard(forbidden=conversation.bot.forbidden_phrase_list, allowed_from=[], sources=1)
    verdict = guard.check(reply.text)
    text = verdict.text if not verdict.blocked else BLOCKED_TEXT
    trace["guardrails"] = guard.record()
    trace["outcome"] = reply.outcome
    message = services.action_result_post(
        call=call,
        text=text,
        outcome=reply.outcome,
        record=record,
        extras={"offer_human": reply.offer_human} if reply.offer_human else {},
        trace=trace,
        requires_followup=reply.requires_followup,
        handoff_follows=reply.handoff or verdict.blocked,
    )
    if reply.handoff or verdict.blocked:
        escalation_services.escalation_open(
            conversation=conversation,
            trigger=Trigger.ACTION if reply.handoff else Trigger.GUARDRAIL,
            reason=reply.handoff_reason or "A guardrail blocked the action's result",
            priority=reply.priority or None,
        )
    return message


def tool_call_broadcast(*, conversation_id: int, message_id: int | None, event: dict) -> None:
    """An action's `tool_call` event (running, then done) to the conversation's sockets, now:
    ephemeral like tokens; the call itself is kept in the trace and its ActionCall row."""
    fields = {k: v for k, v in event.items() if k != "type"}
    realtime.broadcast(
        realtime.conversation_group(conversation_id), "tool_call", message_id=message_id, **fields
    )
