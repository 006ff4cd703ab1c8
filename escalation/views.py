"""The agent console: the queue, one conversation, and what an agent does with it.

Any member (owner, admin, agent) of the organization may use it; anyone else gets a 404 from
the selectors. One template serves the page and every partial (`request.htmx`): the lists
refresh themselves (every 30 s, after a socket reconnect) by asking this view for their own
element, and every action answers with the re-rendered conversation pane, its refusal
(another agent was faster, capacity, a wrong state) shown inline with 409.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bots import selectors as bot_selectors
from bots import services as bot_services
from bots.models import Membership
from conversations import selectors as conversation_selectors
from conversations.models import Conversation
from conversations.payloads import message_payload
from conversations.services import ConversationStateError
from escalation import history_selectors, learning, selectors, services

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
        "package": selectors.handoff_package_display(conversation=conversation),
        # The customer panel (templates/escalation/_customer_panel.html), as on their page.
        "customer_conversations": history_selectors.customer_conversations(
            customer=conversation.customer, exclude_id=conversation.pk, limit=5
        ),
        "targets": selectors.transfer_targets(organization=membership.organization),
        "queues": Conversation.Queue.choices,
        "mine_now": conversation.with_agent
        and conversation.assigned_agent_id == membership.user_id,
        "faq": learning.faq_form(conversation=conversation),
        **extra,
    }


def _pane(request, membership, conversation, *, status=200, **extra):
    context = {**_base(membership), **_pane_context(membership, conversation, **extra)}
    return render(request, f"{TEMPLATE}#pane", context, status=status)


# --- Actions ----------------------------------------------------------------------------------
def _act(request, org, conversation_id, action, **kwargs):
    """Run `action` on a conversation of the member's organization and answer with the pane;
    a refusal is shown in it, with 409 (state) or 400 (input), and changes nothing."""
    membership = _membership(request, org)
    conversation = selectors.console_conversation_get(
        membership=membership, conversation_id=conversation_id
    )
    try:
        services.console_act(conversation=conversation, agent=request.user, action=action, **kwargs)
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
    """With "The bot should have handled this" ticked (`bot_missed`) and an optional note."""
    return _act(
        request,
        org,
        conversation_id,
        services.conversation_resolve,
        bot_missed=request.POST.get("bot_missed") == "on",
        note=request.POST.get("bot_missed_note", ""),
    )


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


# --- Learning from agents: "Save as an FAQ" and the suggested reply -----------------------------
FAQ_TEMPLATE = "escalation/_save_faq.html"


@login_required
@require_http_methods(["GET", "POST"])
def save_faq(request, org, conversation_id):
    """GET: the form, drafted from the customer's question and the agent's reply. POST: save it
    into the bot's "Answers from the team" (it syncs in the worker). With htmx the form's own
    element answers (400 bad input, 409 not resolved: what was typed is kept); without, the
    page at /o/<org>/console/c/<id>/faq/."""
    membership = _membership(request, org)
    conversation = selectors.console_conversation_get(
        membership=membership, conversation_id=conversation_id
    )
    status, saved = 200, None
    if request.method == "GET":
        faq = learning.faq_form(conversation=conversation)
        if faq is None:
            error = "Resolve the conversation before saving its answer."
            faq = {"question": "", "answer": "", "errors": {"form": error}}
    else:
        question, answer = request.POST.get("question", ""), request.POST.get("answer", "")
        faq = {"question": question, "answer": answer, "errors": {}}
        try:
            saved = services.conversation_save_faq(
                conversation=conversation, agent=request.user, question=question, answer=answer
            )
        except ValidationError as exc:
            faq["errors"] = {
                ("form" if field == NON_FIELD_ERRORS else field): " ".join(errors)
                for field, errors in exc.message_dict.items()
            }
            status = 400
        except ConversationStateError as exc:
            faq["errors"] = {"form": str(exc)}
            status = 409
    if saved is not None and not request.htmx:
        messages.success(request, f"Saved “{saved.question}” to Answers from the team.")
        return redirect("console_save_faq", org, conversation.pk)
    context = {**_base(membership), "conversation": conversation, "faq": faq, "saved": saved}
    template = FAQ_TEMPLATE if request.htmx else "escalation/save_faq.html"
    return render(request, template, context, status=status)


@login_required
@require_GET
def suggest(request, org, conversation_id):
    """The bot's draft for the customer's latest message, with an Insert button (the console
    loads it after the pane: drafting a fresh one runs the pipeline)."""
    membership = _membership(request, org)
    conversation = selectors.console_conversation_get(
        membership=membership, conversation_id=conversation_id
    )
    suggestion = learning.reply_suggestion(conversation=conversation)
    context = {**_base(membership), "conversation": conversation, "suggestion": suggestion}
    return render(request, f"{TEMPLATE}#suggestion", context)
