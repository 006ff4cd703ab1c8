"""Reads of conversations, scoped to who asks: a customer sees only their own, a member only
their organization's. Anything else is a 404, never a 403, so outsiders cannot probe ids."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from bots.models import Bot, Membership, Organization
from conversations.models import ActionCall, Conversation, Customer, Message

MAX_MESSAGES = 500


def conversation_get_for_customer(*, customer: Customer, conversation_id: int) -> Conversation:
    return get_object_or_404(
        Conversation.objects.select_related("bot"), pk=conversation_id, customer=customer
    )


def conversation_list_for_member(
    *, user, organization: Organization, status: str | None = None
) -> QuerySet[Conversation]:
    """The organization's conversations, most recently active first (`status` to filter)."""
    if (
        not user.is_authenticated
        or not Membership.objects.filter(user=user, organization=organization).exists()
    ):
        raise Http404
    conversations = Conversation.objects.filter(bot__organization=organization).select_related(
        "bot", "customer", "assigned_agent"
    )
    if status:
        conversations = conversations.filter(status=status)
    return conversations.order_by("-updated_at")


def conversation_get_for_member(*, user, conversation_id: int) -> Conversation:
    if not user.is_authenticated:
        raise Http404
    return get_object_or_404(
        Conversation.objects.select_related("bot", "customer", "assigned_agent"),
        pk=conversation_id,
        bot__organization__memberships__user=user,
    )


def messages_after(
    *, conversation: Conversation, after_id: int = 0, limit: int = 200, internal: bool = False
) -> list[Message]:
    """Messages newer than `after_id`, oldest first: what a reconnecting client missed.
    Pending answers are included with the text written so far. Agents' internal notes only
    with `internal=True` (the console): the customer's channels never carry them."""
    limit = max(1, min(limit, MAX_MESSAGES))
    messages = conversation.messages.filter(pk__gt=after_id)
    if not internal:
        messages = messages.filter(internal=False)
    return list(messages.select_related("agent").order_by("id")[:limit])


def customer_history(
    *, customer: Customer, exclude_conversation_id: int | None = None, limit: int = 3
) -> list[Conversation]:
    """A verified customer's previous conversations with the bot, newest first, for the
    pipeline's summary. `conversation.messages.all()` on each holds its complete messages only.

    Anonymous customers have none: a visitor id lives in one browser, which may be shared, and
    only a signed user id proves it is the same person.
    """
    if not customer.verified:
        return []
    conversations = Conversation.objects.filter(customer=customer, bot_id=customer.bot_id)
    if exclude_conversation_id is not None:
        conversations = conversations.exclude(pk=exclude_conversation_id)
    complete = Message.objects.filter(state=Message.State.COMPLETE, internal=False).order_by("id")
    return list(
        conversations.order_by("-created_at", "-pk").prefetch_related(
            Prefetch("messages", complete)
        )[:limit]
    )


def conversation_window(*, conversation: Conversation, turns: int = 10) -> list[Message]:
    """The last `turns` complete messages, oldest first: what the pipeline reads verbatim.
    Agents' internal notes are for colleagues, not for the bot to repeat to the customer."""
    latest = conversation.messages.filter(state=Message.State.COMPLETE, internal=False)
    latest = latest.order_by("-id")[:turns]
    return list(reversed(latest))


# --- For the chat channels (chat/api.py, chat/consumers/widget.py, chat/runner.py) ----------
def conversation_get_for_bot(*, bot: Bot, conversation_id: int) -> Conversation:
    """For the API, authenticated by the bot's secret key: any of that bot's conversations."""
    return get_object_or_404(
        Conversation.objects.select_related("bot", "customer"), pk=conversation_id, bot=bot
    )


def message_get_for_bot(*, bot: Bot, message_id: int) -> Message:
    return get_object_or_404(
        Message.objects.select_related("conversation"), pk=message_id, conversation__bot=bot
    )


def message_get_for_conversation(*, conversation: Conversation, message_id: int) -> Message:
    return get_object_or_404(Message, pk=message_id, conversation=conversation)


def message_answer(*, message: Message) -> Message | None:
    """The bot's latest answer to the customer's `message`, if it has one."""
    return message.replies.filter(sender=Message.Sender.AI).order_by("-id").first()


def customer_questions_before(
    *, conversation: Conversation, before_id: int, limit: int
) -> list[Message]:
    """The customer's last `limit` messages before `before_id`, oldest first (the rolling
    summary of what fell out of the pipeline's window)."""
    older = conversation.messages.filter(sender=Message.Sender.USER, pk__lt=before_id)
    return list(reversed(older.order_by("-id")[:limit]))


def messages_unanswered(*, since: datetime, stale_before: datetime, limit: int) -> list[Message]:
    """Customer messages the bot still owes an answer, for the runner's recovery: the latest of
        a conversation that is with the bot, sent after `since`, followed by nothing but failed
        answers, and either with a failed answer or sent before `stale_before` (a turn that never
        started). Annotated with `bot_attempts`, the answers tried so far, and `bot_cut_offs`, those
    of them a crash or restart cut off."""
    later = Message.objects.filter(conversation=OuterRef("conversation"), pk__gt=OuterRef("pk"))
    failed = Message.objects.filter(
        reply_to=OuterRef("pk"), sender=Message.Sender.AI, state=Message.State.FAILED
    )
    return list(
        Message.objects.filter(
            sender=Message.Sender.USER,
            conversation__status=Conversation.Status.AI,
            created_at__gte=since,
        )
        # Anything after it but a failed answer (a newer message, an answer, a person's note)
        # means the conversation moved on.
        .exclude(Exists(later.exclude(sender=Message.Sender.AI, state=Message.State.FAILED)))
        .filter(Q(Exists(failed)) | Q(created_at__lt=stale_before))
        .annotate(
            bot_attempts=Count("replies", filter=Q(replies__sender=Message.Sender.AI)),
            bot_cut_offs=Count(
                "replies",
                filter=Q(replies__sender=Message.Sender.AI, replies__trace__cut_off=True),
            ),
        )
        .select_related("conversation__bot", "conversation__customer")
        .order_by("created_at")[:limit]
    )


def action_call_asking(*, conversation: Conversation, before_id: int) -> ActionCall | None:
    """The bot's open question for an action's missing argument, asked before the customer's
    message `before_id` (each turn drops the one before: conversations.services.actions)."""
    return (
        conversation.action_calls.filter(state=ActionCall.State.ASKING, message_id__lt=before_id)
        .order_by("-id")
        .first()
    )
