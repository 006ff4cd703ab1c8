"""The bot's action calls in a conversation (conversations.ActionCall): what a turn called or
asked, and the customer's Confirm or Cancel on a confirmation card.

The pipeline decides the calls and writes nothing; the chat runner saves them here with the
answer. A confirmation is moved on once, under the call's row lock, and only in its own
conversation; its result is a bot message of its own (action_result_post).
"""

from __future__ import annotations

from django.db import transaction

from conversations.models import ActionCall, Conversation, Message
from conversations.services.common import (
    STATUS_FIELDS,
    ConversationStateError,
    Status,
    _broadcast_conversation,
    _broadcast_message,
    _lock,
    _move,
)


def action_calls_save(
    *, conversation: Conversation, message: Message, calls: list[dict]
) -> list[ActionCall]:
    """Save a turn's calls (conversations/pipeline/actions.Call as dicts) against the bot's
    answer `message`. A question asked in an earlier turn that is still open is dropped: this
    turn either answered it (its call is among `calls`) or the customer moved on."""
    with transaction.atomic():
        conversation.action_calls.filter(
            state=ActionCall.State.ASKING, message_id__lt=message.pk
        ).update(state=ActionCall.State.DROPPED)
        return [
            ActionCall.objects.create(
                conversation=conversation,
                message=message,
                action_id=call["action_id"],
                name=call["name"][:64],
                arguments=call.get("arguments") or {},
                asked_for=call.get("asked_for") or "",
                state=call["state"],
                outcome=call.get("outcome") or "",
                confirmation=call.get("confirmation") or "",
                record=call.get("record") or {},
            )
            for call in calls
        ]


def action_call_decide(*, conversation: Conversation, call_id: int, confirmed: bool) -> ActionCall:
    """The customer's Confirm (`confirmed`) or Cancel on the card of call `call_id`.

    Locks the conversation, then the call. Only a call of this conversation that is still
    waiting moves on, and only once: a second tap, a tap in another tab, or another
    conversation's id raises ConversationStateError and changes nothing. A person who took
    over ends the bot's part: their conversation is no longer the bot's to act in. The card
    (the bot message's extras) records the decision, so a reload shows it answered.
    """
    if not isinstance(confirmed, bool):
        raise ValueError('"confirmed" is true or false.')
    with transaction.atomic():
        _lock(conversation)
        call = (
            ActionCall.objects.select_for_update()
            .filter(pk=call_id, conversation=conversation)
            .first()
        )
        if call is None:
            raise ConversationStateError("There is no such request to confirm here.")
        if call.state != ActionCall.State.PENDING_CONFIRMATION:
            raise ConversationStateError("This request was already answered.")
        if conversation.status in (Status.RESOLVED, Status.CLOSED):
            raise ConversationStateError("This conversation has ended.")
        if not conversation.with_bot:
            raise ConversationStateError("A person has this conversation now.")
        call.state = ActionCall.State.CONFIRMED if confirmed else ActionCall.State.CANCELLED
        call.save(update_fields=["state", "updated_at"])
        card = call.message
        if card is not None and isinstance(card.extras.get("action_confirm"), dict):
            card.extras = {
                **card.extras,
                "action_confirm": {
                    **card.extras["action_confirm"],
                    "state": "confirmed" if confirmed else "cancelled",
                },
            }
            card.save(update_fields=["extras", "updated_at"])
            _broadcast_message("message.updated", card)
    return call


def action_result_post(
    *,
    call: ActionCall,
    text: str,
    outcome: str,
    record: dict | None = None,
    extras: dict | None = None,
    trace: dict | None = None,
    requires_followup: bool = False,
    handoff_follows: bool = False,
) -> Message:
    """Finish a decided call (`record` set: it ran) and post the bot's message about it. The
    conversation is the customer's to answer next, unless a handoff follows.

    Locks the conversation. Raises ConversationStateError when a person took it meanwhile:
    the call's outcome is kept, and the person sees it in the trace-less record.
    """
    if outcome not in Message.Outcome.values:
        raise ValueError(f"Unknown outcome {outcome!r}.")
    conversation = call.conversation
    with transaction.atomic():
        _lock(conversation)
        if record is not None:
            call.record, call.outcome = record, record.get("outcome", "")
            call.state = ActionCall.State.DONE
            call.save(update_fields=["record", "outcome", "state", "updated_at"])
        if not conversation.with_bot:
            raise ConversationStateError("A person has this conversation now.")
        message = Message.objects.create(
            conversation=conversation,
            sender=Message.Sender.AI,
            text=text,
            outcome=outcome,
            extras=extras or {},
            trace=trace or {},
            requires_followup=requires_followup,
        )
        conversation.last_message_at = message.created_at
        if conversation.status == Status.AI and not handoff_follows:
            _move(conversation, Status.AWAITING, reason="The bot answered")
        conversation.save(update_fields=[*STATUS_FIELDS, "last_message_at", "updated_at"])
        _broadcast_message("message.created", message)
        _broadcast_conversation("conversation.updated", conversation)
    return message
