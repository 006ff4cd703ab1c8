"""The agent console: the queue, one conversation, and what an agent does with it.

Any member (owner, admin, agent) of the organization may use it; anyone else gets a 404 from
the selectors. One template serves the page and every partial (`request.htmx`): the lists
refresh themselves (every 30 s, after a socket reconnect) by asking this view for their own
element, and every action answers with the re-rendered conversation pane, its refusal
(another agent was faster, capacity, a wrong state) shown inline with 409.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from bots import selectors as bot_selectors
from bots import services as bot_services
from bots.models import Membership
from conversations import selectors as conversation_selectors
from conversations.models import Conversation, Message
from conversations.payloads import message_payload
from conversations.services import ConversationStateError
from escalation import history_selectors, selectors, services
from escalation import package as handoff_package

TEMPLATE = "escalation/console.html"
LIST_PARTIALS = {"queue", "mine", "with-bot", "availability"}
Status = Conversation.Status


def _membership(request, org) -> Membership:
    return bot_selectors.membership_get(user=request.user, organization_slug=org)


def _lists(membership: Membership) -> dict:
    return {
        "queue": selectors.queue_list(organization_id=membership.organization_id),
        "mine": selectors.mine_list(membership=membership),
        "with_bot": selectors.with_bot_list(membership=membership),
    }


def _base(membership: Membership) -> dict:
    return {"membership": membership, "organization": membership.organization}


@login_required
@require_GET
def console(request, org):
    """The console page; with htmx, the one list it asks for (its element id)."""
    membership = _membership(request, org)
    context = {**_base(membership), **_lists(membership)}
    target = request.htmx.target if request.htmx else None
    if target in LIST_PARTIALS:
        return render(request, f"{TEMPLATE}#{target}", context)
    return render(request, TEMPLATE, context)


@login_required
@require_GET
def console_conversation(request, org, conversation_id):
    """The console with one conversation open; with htmx targeting the pane, the pane only."""
    membership = _membership(request, org)
    conversation = selectors.console_conversation_get(
        membership=membership, conversation_id=conversation_id
    )
    if request.htmx and request.htmx.target == "pane":
        return _pane(request, membership, conversation)
    context = {**_base(membership), **_lists(membership), **_pane_context(membership, conversation)}
    return render(request, TEMPLATE, context)


def _pane_context(membership: Membership, conversation: Conversation, **extra) -> dict:
    messages = conversation_selectors.messages_after(
        conversation=conversation, limit=conversation_selectors.MAX_MESSAGES, internal=True
    )
    return {
        "conversation": conversation,
        "transcript": [message_payload(m) for m in messages],
        "package": _package(conversation),
        # The customer panel (templates/escalation/_customer_panel.html), as on their page.
        "customer_conversations": history_selectors.customer_conversations(
            customer=conversation.customer, exclude_id=conversation.pk, limit=5
        ),
        "targets": selectors.transfer_targets(organization=membership.organization),
        "queues": Conversation.Queue.choices,
        "mine_now": conversation.with_agent
        and conversation.assigned_agent_id == membership.user_id,
        **extra,
    }


def _pane(request, membership, conversation, *, status=200, **extra):
    context = {**_base(membership), **_pane_context(membership, conversation, **extra)}
    return render(request, f"{TEMPLATE}#pane", context, status=status)


# What escalation/package.py writes, and the shape of each; lists hold dicts, except signals.
PACKAGE_KEYS = {
    "summary": str,
    "trajectory": list,
    "retrieved": list,
    "drafted": str,
    "drafted_sent": bool,
    "suggested_action": str,
    "signals": list,
    "frustration": (int, float),
    "category": str,
    "expected_reply_at": str,
}
# Kept for the record, not for the agent to read.
PACKAGE_HIDDEN = {"message_id"}


def _datetime(value: str):
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return value  # shown as it was stored


def _package(conversation: Conversation) -> dict:
    """The handoff package of the latest escalation (escalation/package.py fills it), with
    what the conversation itself knows where a key is missing: the handoff reason, its
    sentiment, what the bot last retrieved and wrote."""
    log = selectors.escalation_latest(conversation=conversation)
    package = dict(log.package) if log is not None and isinstance(log.package, dict) else {}
    result, other = {}, []
    for key, value in package.items():
        if key in PACKAGE_HIDDEN:
            continue
        # A key of the wrong shape is still shown, as text, rather than dropped or misread.
        if key in PACKAGE_KEYS and isinstance(value, PACKAGE_KEYS[key]):
            if key == "signals":
                value = [item.replace("_", " ") for item in value if isinstance(item, str)]
            elif key == "category":
                value = value.replace("_", " ")
            elif key == "expected_reply_at":
                value = _datetime(value)
            elif isinstance(value, list):
                value = [item for item in value if isinstance(item, dict)]
            result[key] = value
        else:
            other.append((key.replace("_", " ").capitalize(), value))
    result = {key: result.get(key) for key in PACKAGE_KEYS}
    result["other"] = other
    result["reason"] = (log.reason if log is not None else "") or conversation.handoff_reason
    result["trigger"] = log.get_trigger_display() if log is not None else ""
    result["sentiment_level"] = conversation.sentiment_level
    result["sentiment"] = conversation.sentiment
    if not result["retrieved"] or not result["drafted"]:
        last = selectors.last_bot_message(conversation=conversation)
        if last is not None:
            if not result["retrieved"]:
                result["retrieved"] = handoff_package.retrieved_by(last)
            if not result["drafted"]:
                result["drafted"] = last.trace.get("unsent_text") or last.text
                result["drafted_sent"] = last.state == Message.State.COMPLETE
    return result


# --- Actions ----------------------------------------------------------------------------------
def _act(request, org, conversation_id, action, **kwargs):
    """Run `action` on a conversation of the member's organization and answer with the pane;
    a refusal is shown in it, with 409 (state) or 400 (input), and changes nothing."""
    membership = _membership(request, org)
    conversation = selectors.console_conversation_get(
        membership=membership, conversation_id=conversation_id
    )
    try:
        action(conversation=conversation, agent=request.user, **kwargs)
    except ConversationStateError as exc:
        return _refused(request, membership, conversation_id, str(exc), 409)
    except ValueError as exc:  # MessageRejected and bad input: the agent's text is kept
        return _refused(request, membership, conversation_id, str(exc), 400, kwargs.get("text"))
    return _pane(request, membership, _fresh(membership, conversation_id))


def _fresh(membership, conversation_id) -> Conversation:
    return selectors.console_conversation_get(
        membership=membership, conversation_id=conversation_id
    )


def _refused(request, membership, conversation_id, error, status, text=None):
    conversation = _fresh(membership, conversation_id)
    return _pane(request, membership, conversation, status=status, error=error, draft=text or "")


@login_required
@require_POST
def claim(request, org, conversation_id):
    return _act(request, org, conversation_id, services.conversation_claim)


@login_required
@require_POST
def take_over(request, org, conversation_id):
    return _act(request, org, conversation_id, services.conversation_take_over)


@login_required
@require_POST
def resolve(request, org, conversation_id):
    return _act(request, org, conversation_id, services.conversation_resolve)


@login_required
@require_POST
def return_to_bot(request, org, conversation_id):
    return _act(request, org, conversation_id, services.conversation_return_to_bot)


@login_required
@require_POST
def reply(request, org, conversation_id):
    text = request.POST.get("text", "")
    return _act(request, org, conversation_id, services.conversation_reply, text=text)


@login_required
@require_POST
def note(request, org, conversation_id):
    text = request.POST.get("text", "")
    return _act(request, org, conversation_id, services.message_add_note, text=text)


@login_required
@require_POST
def transfer(request, org, conversation_id):
    """`to` is `queue:<queue>` or `agent:<user id>`; the agent must be a member here."""
    membership = _membership(request, org)
    kind, _, value = request.POST.get("to", "").partition(":")
    if kind == "queue" and value in Conversation.Queue.values:
        target = {"to_queue": value}
    elif kind == "agent" and value.isdigit() and len(value) <= 18:
        colleague = selectors.transfer_targets(organization=membership.organization).filter(
            user_id=int(value)
        )
        colleague = colleague.first()
        if colleague is None:
            return _refused(
                request, membership, conversation_id, "Pick a member of this organization.", 400
            )
        target = {"to_agent": colleague.user}
    else:
        return _refused(request, membership, conversation_id, "Pick a queue or an agent.", 400)
    return _act(request, org, conversation_id, services.conversation_transfer, **target)


@login_required
@require_POST
def seen(request, org, conversation_id):
    """The member read the conversation: its unread badge clears for everyone."""
    membership = _membership(request, org)
    conversation = selectors.console_conversation_get(
        membership=membership, conversation_id=conversation_id
    )
    services.conversation_mark_seen(conversation=conversation)
    return render(request, f"{TEMPLATE}#seen", {"conversation": conversation})


@login_required
@require_POST
def availability(request, org):
    membership = _membership(request, org)
    value = request.POST.get("availability", "")
    status = 200
    error = ""
    try:
        bot_services.membership_set_availability(membership=membership, availability=value)
    except ValidationError as exc:
        error, status = " ".join(exc.messages), 400
    return render(
        request,
        f"{TEMPLATE}#availability",
        {**_base(membership), "availability_error": error},
        status=status,
    )
