"""Conversation history, for every member of the organization (agents too): the searchable
list, one conversation as it happened (transcript with system events and notes, the escalation
log and handoff package, each bot answer's trace for people), and a customer's page.

Read-only pages: what an agent does with a conversation stays in the console. A value of the
query string that does not parse is shown back with what is wrong (400), never guessed.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from bots import selectors as bot_selectors
from conversations import trace_display
from conversations.models import Conversation, Message
from escalation import history_selectors as history
from escalation import learning
from escalation import selectors as escalation_selectors
from knowledge import selectors as knowledge_selectors


def _membership(request, org):
    return bot_selectors.membership_get(user=request.user, organization_slug=org)


def _choices(membership) -> dict:
    members = bot_selectors.membership_list(organization=membership.organization)
    return {
        "bots": bot_selectors.bot_list(organization=membership.organization),
        "members": [m.user for m in members],
        "statuses": Conversation.Status.choices,
        "outcomes": list(history.OUTCOMES.items()),
        "queues": Conversation.Queue.choices,
        "priorities": Conversation.Priority.choices,
        "channels": Conversation.Channel.choices,
        "csat_values": [(str(n), "★" * n) for n in range(5, 0, -1)] + [("none", "Not rated")],
    }


@login_required
@require_GET
def conversation_list(request, org):
    membership = _membership(request, org)
    filters = history.history_filters_from(membership=membership, params=request.GET)
    context = {
        "membership": membership,
        "organization": membership.organization,
        "filters": filters,
        "params": request.GET,
        **_choices(membership),
    }
    errors = list(filters.errors)
    rows, next_cursor = [], ""
    if not errors:
        try:
            rows, next_cursor = history.history_list(
                membership=membership, filters=filters, cursor=request.GET.get("after", "")
            )
        except history.BadCursor as exc:
            errors.append(str(exc))
    snippets = history.history_snippets(conversation_ids=[c.pk for c in rows], q=filters.q)
    for row in rows:
        row.snippet = snippets.get(row.pk, "")
    query = request.GET.copy()
    query.pop("after", None)
    context.update(
        rows=rows,
        errors=errors,
        paged=bool(request.GET.get("after")),
        first_page=query.urlencode(),
        next_page=_with(query, after=next_cursor) if next_cursor else "",
    )
    return render(request, "history/conversation_list.html", context, status=400 if errors else 200)


def _with(query, **values) -> str:
    query = query.copy()
    for key, value in values.items():
        query[key] = value
    return query.urlencode()


def _traces(conversation: Conversation, messages: list[Message]) -> dict[int, dict]:
    """Each bot answer's trace, for people (conversations/trace_display.py) and as raw JSON."""
    answers = [m for m in messages if m.sender == Message.Sender.AI]
    ids = [i for m in answers for i in trace_display.retrieved_chunk_ids(m.trace)]
    chunks = knowledge_selectors.chunk_summaries(bot=conversation.bot, chunk_ids=ids)
    return {
        m.pk: {
            "sections": trace_display.sections(m.trace, chunks=chunks),
            "raw": trace_display.raw(m.trace),
        }
        for m in answers
    }


@login_required
@require_GET
def conversation_detail(request, org, conversation_id):
    membership = _membership(request, org)
    conversation = history.history_conversation_get(
        membership=membership, conversation_id=conversation_id
    )
    timeline = history.history_timeline(conversation=conversation)
    traces = _traces(conversation, [i["message"] for i in timeline if i["kind"] == "message"])
    for item in timeline:
        if item["kind"] == "message":
            item["trace"] = traces.get(item["message"].pk)
    escalations = history.history_escalations(conversation=conversation)
    return render(
        request,
        "history/conversation_detail.html",
        {
            "membership": membership,
            "organization": membership.organization,
            "conversation": conversation,
            "timeline": timeline,
            "escalations": escalations,
            "package": (
                escalation_selectors.handoff_package_display(conversation=conversation)
                if escalations
                else None
            ),
            "faq": learning.faq_form(conversation=conversation),
            "resolver": history.history_resolver(conversation=conversation),
            "customer": conversation.customer,
            "customer_conversations": history.customer_conversations(
                customer=conversation.customer, exclude_id=conversation.pk, limit=10
            ),
        },
    )


@login_required
@require_GET
def customer_detail(request, org, customer_id):
    membership = _membership(request, org)
    customer = history.history_customer_get(membership=membership, customer_id=customer_id)
    return render(
        request,
        "history/customer_detail.html",
        {
            "membership": membership,
            "organization": membership.organization,
            "customer": customer,
            "conversations": history.customer_conversations(customer=customer),
        },
    )
