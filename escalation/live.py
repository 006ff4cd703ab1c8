"""The console's pushed partials, rendered from committed data: the queue (once per change,
for the whole organization, by escalation/receivers.py after commit) and, in the
console's socket, for the members watching a conversation: one message, the typing
indicator, and its status and actions when someone else moved it.

Each is the same partial the console's views render (templates/escalation/console.html),
tagged by element id for htmx's out-of-band swap.
"""

from __future__ import annotations

from django.template.loader import render_to_string

from bots.models import Organization
from conversations.models import Conversation
from escalation import selectors

TEMPLATE = "escalation/console.html"


def queue_html(*, organization_id: int) -> str:
    organization = Organization.objects.get(pk=organization_id)
    return render_to_string(
        f"{TEMPLATE}#queue",
        {
            "organization": organization,
            "queue": selectors.queue_list(organization_id=organization_id),
            "oob": True,
        },
    )


def pane_status_html(*, membership, conversation_id: int) -> str:
    """The open conversation's header and actions (who has it, what this member may do now):
    swapped in when another member claims, transfers or resolves it, so nobody acts on a
    conversation that moved. The reply and note forms below are left alone (a half-written
    reply is kept)."""
    conversation = selectors.console_conversation_get(
        membership=membership, conversation_id=conversation_id
    )
    return render_to_string(
        f"{TEMPLATE}#pane-status",
        {
            "conversation": conversation,
            "organization": membership.organization,
            "targets": selectors.transfer_targets(organization=membership.organization),
            "queues": Conversation.Queue.choices,
            "oob": True,
        },
    )


def message_html(*, message: dict) -> str:
    """A message event's payload (conversations.payloads.message_payload) as the transcript
    shows it, to append (or replace, by id) in that conversation's transcript."""
    return render_to_string(f"{TEMPLATE}#message-push", {"m": message})


def typing_html(*, conversation_id: int, name: str, active: bool) -> str:
    return render_to_string(
        f"{TEMPLATE}#typing",
        {"conversation_id": conversation_id, "typing_name": name, "active": active, "oob": True},
    )


def error_html(*, text: str) -> str:
    return render_to_string(f"{TEMPLATE}#console-error", {"error": text, "oob": True})
