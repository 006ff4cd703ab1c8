"""Reads for conversation history (`/o/<org>/conversations/`), for every member of the
organization, agents included: the searchable list, one conversation with everything that
happened in it, and a customer with their previous conversations.

Scoped like every member read: the membership comes from `bots.selectors.membership_get` (a
non-member's request is a 404 there) and every query here filters by its organization, so
another organization's conversation or customer is a 404 and never a row of a list.

Search is PostgreSQL full-text over every message of a conversation (customer, bot, agent,
notes), through the GIN expression index `message_search` (conversations migration 0010); the
list is newest first and paged by keyset on (created_at, id), so page 40 costs what page 1 does
and a conversation started while someone pages shifts nothing.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchVector
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Exists,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from bots.models import Bot, Membership
from conversations.models import SEARCH_CONFIG, Conversation, Customer, Message, Transition
from escalation.models import EscalationLog

PAGE_SIZE = 25
QUERY_CHARS = 200
CUSTOMER_CONVERSATIONS = 50
# A search checks the newest WINDOW conversations first, then asks the index for at most
# INDEX_IDS conversations with the words (_searched).
WINDOW = 150
INDEX_IDS = 20_000
# Outcome: how it ended (Conversation.resolution), or that it has not yet.
OUTCOMES = {
    "bot": "Resolved by the bot",
    "agent": "Resolved by an agent",
    "abandoned": "Abandoned",
    "open": "Still open",
}
ENDED = (Conversation.Status.RESOLVED, Conversation.Status.CLOSED)
CSAT_VALUES = {"1", "2", "3", "4", "5", "none"}
YES_NO = {"yes": True, "no": False}


@dataclass
class HistoryFilters:
    """What the list is narrowed to; every field None (or "") means "any"."""

    q: str = ""
    bot_id: int | None = None
    status: str = ""
    outcome: str = ""
    resolved_by: int | None = None  # a member's user id: who clicked Resolve
    agent: int | None = None  # the assigned agent's user id
    queue: str = ""
    priority: str = ""
    csat: str = ""  # "1"…"5", or "none" for not rated
    escalated: bool | None = None
    start: date | None = None
    end: date | None = None  # inclusive
    channel: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return any(v not in (None, "") for k, v in vars(self).items() if k not in ("q", "errors"))


def _member_id(value: str, members: set[int], label: str, errors: list[str]) -> int | None:
    if not value:
        return None
    if value.isdigit() and len(value) <= 18 and int(value) in members:
        return int(value)
    errors.append(f"{label}: pick a member of this organization.")
    return None


def _day(value: str, label: str, errors: list[str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(f"{label}: a date is written YYYY-MM-DD (got “{value[:20]}”).")
        return None


def _choice(value: str, choices, label: str, errors: list[str]) -> str:
    if not value or value in choices:
        return value
    errors.append(f"{label}: “{value[:20]}” is not one of the choices.")
    return ""


def history_filters_from(*, membership: Membership, params) -> HistoryFilters:
    """The list's filters from a query string. A value that does not parse is left out and
    described in `errors` (the page shows them; nothing is guessed)."""
    errors: list[str] = []
    get = lambda key: (params.get(key) or "").strip()  # noqa: E731
    members = set(
        Membership.objects.filter(organization_id=membership.organization_id).values_list(
            "user_id", flat=True
        )
    )
    bots = set(membership.organization.bots.values_list("pk", flat=True))
    bot = get("bot")
    bot_id = None
    if bot:
        if bot.isdigit() and len(bot) <= 18 and int(bot) in bots:
            bot_id = int(bot)
        else:
            errors.append("Bot: pick one of this organization's bots.")
    escalated = get("escalated")
    if escalated and escalated not in YES_NO:
        errors.append("Escalated: yes or no.")
    filters = HistoryFilters(
        q=get("q")[:QUERY_CHARS],
        bot_id=bot_id,
        status=_choice(get("status"), Conversation.Status.values, "Status", errors),
        outcome=_choice(get("outcome"), OUTCOMES, "Outcome", errors),
        resolved_by=_member_id(get("resolved_by"), members, "Resolved by", errors),
        agent=_member_id(get("agent"), members, "Agent", errors),
        queue=_choice(get("queue"), Conversation.Queue.values, "Queue", errors),
        priority=_choice(get("priority"), Conversation.Priority.values, "Priority", errors),
        csat=_choice(get("csat"), CSAT_VALUES, "CSAT", errors),
        escalated=YES_NO.get(escalated),
        start=_day(get("start"), "From", errors),
        end=_day(get("end"), "To", errors),
        channel=_choice(get("channel"), Conversation.Channel.values, "Channel", errors),
    )
    if filters.start and filters.end and filters.start > filters.end:
        errors.append("From must be on or before To.")
        filters.start = filters.end = None
    filters.errors = errors
    return filters


# --- Keyset cursor: the last row of a page, (created_at, id), opaque to people ---------------
class BadCursor(ValueError):
    pass


def cursor_encode(conversation: Conversation) -> str:
    raw = f"{conversation.created_at.isoformat()}|{conversation.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor_decode(value: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        stamp, _, pk = raw.partition("|")
        moment = datetime.fromisoformat(stamp)
        if moment.tzinfo is None or not pk.isdigit() or len(pk) > 18:
            raise ValueError
        return moment, int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursor("This page link is damaged: start again from the newest.") from exc


def search_query(text: str) -> SearchQuery:
    """Web-search syntax: words (all of them), "a phrase", -excluded, or."""
    return SearchQuery(text, config=SEARCH_CONFIG, search_type="websearch")


def message_matches(text: str) -> QuerySet[Message]:
    # The same expression as the index `message_search`, or PostgreSQL cannot use it.
    return Message.objects.annotate(search=SearchVector("text", config=SEARCH_CONFIG)).filter(
        search=search_query(text)
    )


def _first_question():
    first = Message.objects.filter(
        conversation=OuterRef("pk"), sender=Message.Sender.USER
    ).order_by("id")
    return Subquery(first.values("text")[:1])


def _filtered(membership: Membership, f: HistoryFilters) -> QuerySet[Conversation]:
    """The organization's conversations narrowed by every filter but the words."""
    # The bots' ids rather than a join: PostgreSQL then knows how many rows are the
    # organization's and walks the (created_at, id) index newest first instead of sorting.
    bots = list(Bot.objects.filter(organization_id=membership.organization_id).values_list("pk"))
    conversations = Conversation.objects.filter(bot_id__in=[pk for (pk,) in bots])
    exact = {
        "bot_id": f.bot_id,
        "status": f.status,
        "queue": f.queue,
        "priority": f.priority,
        "channel": f.channel,
        "assigned_agent_id": f.agent,
    }
    conversations = conversations.filter(**{k: v for k, v in exact.items() if v not in ("", None)})
    if f.outcome == "open":
        conversations = conversations.exclude(status__in=ENDED)
    elif f.outcome:
        conversations = conversations.filter(resolution=f.outcome)
    if f.resolved_by is not None:
        resolved = Transition.objects.filter(
            conversation=OuterRef("pk"),
            to_status=Conversation.Status.RESOLVED,
            actor_id=f.resolved_by,
        )
        conversations = conversations.filter(Exists(resolved))
    if f.csat == "none":
        conversations = conversations.filter(csat__isnull=True)
    elif f.csat:
        conversations = conversations.filter(csat=int(f.csat))
    if f.escalated is not None:
        escalated = Exists(EscalationLog.objects.filter(conversation=OuterRef("pk")))
        conversations = conversations.filter(escalated if f.escalated else ~escalated)
    zone = timezone.get_current_timezone()
    if f.start:
        start = datetime.combine(f.start, datetime.min.time(), tzinfo=zone)
        conversations = conversations.filter(created_at__gte=start)
    if f.end:
        end = datetime.combine(f.end + timedelta(days=1), datetime.min.time(), tzinfo=zone)
        conversations = conversations.filter(created_at__lt=end)
    return conversations.order_by("-created_at", "-id")


def _older_than(conversations: QuerySet, moment: datetime, pk: int) -> QuerySet:
    # The plain bound lets the (created_at, id) index start there; the OR breaks ties between
    # conversations started in the same microsecond.
    return conversations.filter(
        Q(created_at__lt=moment) | Q(created_at=moment, pk__lt=pk), created_at__lte=moment
    )


class _AnyOf(Func):
    """`column = ANY(array)`: one parameter however long the list."""

    template = "(%(expressions)s))"
    arg_joiner = " = ANY("
    output_field = BooleanField()


def _newer_or_same(conversations: QuerySet, moment: datetime, pk: int) -> QuerySet:
    return conversations.filter(
        Q(created_at__gt=moment) | Q(created_at=moment, pk__gte=pk), created_at__gte=moment
    )


def _searched(conversations: QuerySet, q: str, want: int) -> list[int]:
    """The ids of the first `want` of `conversations` (newest first) with a message matching
    `q`, fast however common the words are.

    PostgreSQL's choice between walking conversations newest first (checking each one's
    messages) and reading the full-text index rests on its estimate of how common the words
    are; a wrong guess costs seconds (a word nobody wrote, walked through every conversation).
    So the choice is made here: the newest WINDOW conversations are walked first, which fills
    the page whenever the words are common; when they do not, the words are rare, and the
    index lists the few conversations that have them.
    """
    hit = Exists(message_matches(q).filter(conversation=OuterRef("pk")))
    edge = conversations.values_list("created_at", "pk")[WINDOW - 1 : WINDOW]
    edge = edge[0] if edge else None
    window = conversations if edge is None else _newer_or_same(conversations, *edge)
    ids = list(window.filter(hit).values_list("pk", flat=True)[:want])
    if len(ids) == want or edge is None:
        return ids
    rest = _older_than(conversations, *edge)
    matched = list(
        message_matches(q)
        .order_by()
        .values_list("conversation_id", flat=True)
        .distinct()[: INDEX_IDS + 1]
    )
    if len(matched) <= INDEX_IDS:
        # One array parameter rather than IN with thousands of them to parse.
        ids_array = Value(matched, output_field=ArrayField(BigIntegerField()))
        rest = rest.filter(_AnyOf(F("pk"), ids_array)) if matched else rest.none()
    else:
        # Common words all the same, in few of the filtered conversations: PostgreSQL decides.
        rest = rest.filter(hit)
    return ids + list(rest.values_list("pk", flat=True)[: want - len(ids)])


def history_list(
    *, membership: Membership, filters: HistoryFilters, cursor: str = "", size: int = PAGE_SIZE
) -> tuple[list[Conversation], str]:
    """One page of the organization's conversations, newest first, and the cursor of the next
    page ("" on the last). Each row has `first_question`. Raises BadCursor."""
    conversations = _filtered(membership, filters)
    if cursor:
        conversations = _older_than(conversations, *cursor_decode(cursor))
    if filters.q:
        ids = _searched(conversations, filters.q, size + 1)
        page = Conversation.objects.filter(pk__in=ids).order_by("-created_at", "-id")
    else:
        page = conversations[: size + 1]
    rows = list(
        page.select_related("bot", "customer", "assigned_agent").annotate(
            first_question=_first_question()
        )
    )
    more = len(rows) > size
    rows = rows[:size]
    return rows, cursor_encode(rows[-1]) if more and rows else ""


# ts_headline marks the matched words but does not escape the text around them: these
# markers cannot occur in a message, and history_snippets escapes before turning them into
# <mark>.
_START, _STOP = "\x02", "\x03"


def history_snippets(*, conversation_ids: list[int], q: str) -> dict[int, str]:
    """For a page of search results: each conversation's first matching message, excerpted
    around the matched words, as safe HTML with <mark>. The conversations were already read
    through the member's scope (history_list)."""
    if not conversation_ids or not q:
        return {}
    rows = (
        message_matches(q)
        .filter(conversation_id__in=conversation_ids)
        .order_by("conversation_id", "id")
        .distinct("conversation_id")
        .annotate(
            snippet=SearchHeadline(
                "text",
                search_query(q),
                config=SEARCH_CONFIG,
                start_sel=_START,
                stop_sel=_STOP,
                max_words=18,
                min_words=8,
            )
        )
        .values_list("conversation_id", "snippet")
    )
    return {
        pk: mark_safe(  # noqa: S308 - escaped first; only the markers become tags
            escape(snippet).replace(_START, "<mark>").replace(_STOP, "</mark>")
        )
        for pk, snippet in rows
    }


# --- One conversation ------------------------------------------------------------------------
def history_conversation_get(*, membership: Membership, conversation_id: int) -> Conversation:
    return get_object_or_404(
        Conversation.objects.select_related("bot", "customer", "assigned_agent"),
        pk=conversation_id,
        bot__organization_id=membership.organization_id,
    )


def history_timeline(*, conversation: Conversation) -> list[dict]:
    """Messages (notes and system messages included) and status changes, in the order they
    happened: {"kind": "message", "message": …} or {"kind": "transition", "transition": …}."""
    messages = conversation.messages.select_related("agent").order_by("id")
    transitions = conversation.transitions.select_related("actor").order_by("id")
    items = [
        {"kind": "message", "at": m.created_at, "order": (0, m.pk), "message": m} for m in messages
    ]
    items += [
        {"kind": "transition", "at": t.created_at, "order": (1, t.pk), "transition": t}
        for t in transitions
    ]
    return sorted(items, key=lambda item: (item["at"], item["order"]))


def history_escalations(*, conversation: Conversation) -> list[EscalationLog]:
    return list(conversation.escalations.select_related("rule").order_by("triggered_at", "id"))


def history_resolver(*, conversation: Conversation):
    """Who clicked Resolve last (None: the bot, the worker, or nobody yet)."""
    last = (
        conversation.transitions.filter(to_status=Conversation.Status.RESOLVED)
        .select_related("actor")
        .order_by("-id")
        .first()
    )
    return last.actor if last is not None else None


# --- Customers ------------------------------------------------------------------------------
def history_customer_get(*, membership: Membership, customer_id: int) -> Customer:
    return get_object_or_404(
        Customer.objects.select_related("bot"),
        pk=customer_id,
        bot__organization_id=membership.organization_id,
    )


def customer_conversations(
    *, customer: Customer, exclude_id: int | None = None, limit: int = CUSTOMER_CONVERSATIONS
) -> list[Conversation]:
    """The customer's conversations, newest first, each with `first_question`. The customer
    was already read through a member's scope (history_customer_get or the console's)."""
    conversations = Conversation.objects.filter(customer=customer).select_related("assigned_agent")
    if exclude_id is not None:
        conversations = conversations.exclude(pk=exclude_id)
    return list(
        conversations.annotate(first_question=_first_question()).order_by("-created_at", "-id")[
            :limit
        ]
    )
