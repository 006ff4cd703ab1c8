"""escalation.services: what agents do in the console, one service at a time."""

from __future__ import annotations

import pytest

from bots.models import Membership
from conversations import selectors, services
from conversations.models import Conversation, Message, Transition
from conversations.services import ConversationStateError
from conversations.tests.factories import ConversationFactory, MessageFactory
from escalation import services as escalation_services
from escalation.models import EscalationLog
from escalation.services import escalation_open

pytestmark = pytest.mark.django_db

Status = Conversation.Status


@pytest.fixture
def waiting(carlas_chat):
    escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked for a person")
    carlas_chat.refresh_from_db()
    return carlas_chat


def _texts(conversation, **filters):
    return list(conversation.messages.filter(**filters).values_list("text", flat=True))


def test_it_claims_a_waiting_conversation_and_tells_the_customer(
    waiting, agent, broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        escalation_services.conversation_claim(conversation=waiting, agent=agent)
    waiting.refresh_from_db()
    assert (waiting.status, waiting.assigned_agent) == (Status.ACTIVE, agent)
    assert "Sam joined the chat" in _texts(waiting, sender=Message.Sender.SYSTEM)
    step = Transition.objects.filter(conversation=waiting).last()
    assert (step.from_status, step.to_status, step.actor) == ("waiting", "active", agent)
    customer = [p for g, e, p in broadcasts if g == f"conv.{waiting.pk}"]
    assert any(p.get("message", {}).get("text") == "Sam joined the chat" for p in customer)


def test_a_second_claimer_is_told_who_took_it(waiting, agent, admin_member):
    escalation_services.conversation_claim(conversation=waiting, agent=admin_member)
    late = Conversation.objects.get(pk=waiting.pk)
    with pytest.raises(ConversationStateError, match="Ian already took this conversation."):
        escalation_services.conversation_claim(conversation=late, agent=agent)
    late.refresh_from_db()
    assert late.assigned_agent == admin_member


def test_claiming_ones_own_conversation_again_changes_nothing(waiting, agent):
    escalation_services.conversation_claim(conversation=waiting, agent=agent)
    escalation_services.conversation_claim(conversation=waiting, agent=agent)
    assert _texts(waiting).count("Sam joined the chat") == 1


def test_a_conversation_with_the_bot_is_taken_over_not_claimed(carlas_chat, agent):
    with pytest.raises(ConversationStateError, match="take it over"):
        escalation_services.conversation_claim(conversation=carlas_chat, agent=agent)


def test_a_claim_past_the_capacity_is_refused(waiting, agent, carla):
    Membership.objects.filter(user=agent).update(capacity=1)
    ConversationFactory(customer=carla, status=Status.ACTIVE, assigned_agent=agent)
    with pytest.raises(ConversationStateError, match="limit of 1"):
        escalation_services.conversation_claim(conversation=waiting, agent=agent)
    waiting.refresh_from_db()
    assert waiting.status == Status.WAITING


def test_an_outsider_cannot_claim(waiting, outsider):
    with pytest.raises(ConversationStateError, match="not a member"):
        escalation_services.conversation_claim(conversation=waiting, agent=outsider)
    waiting.refresh_from_db()
    assert waiting.status == Status.WAITING


def test_taking_over_escalates_as_an_agent_takeover_and_claims(carlas_chat, agent):
    escalation_services.conversation_take_over(conversation=carlas_chat, agent=agent)
    carlas_chat.refresh_from_db()
    assert (carlas_chat.status, carlas_chat.assigned_agent) == (Status.ACTIVE, agent)
    log = EscalationLog.objects.get(conversation=carlas_chat)
    assert (log.trigger, log.manual) == ("agent_takeover", True)
    steps = list(carlas_chat.transitions.values_list("from_status", "to_status", "actor"))
    assert steps == [("ai", "waiting", agent.pk), ("waiting", "active", agent.pk)]


def test_taking_over_withdraws_the_answer_the_bot_is_writing(carlas_chat, agent):
    question = MessageFactory(conversation=carlas_chat, text="Where is my parcel?")
    pending = services.message_start_bot(conversation=carlas_chat, reply_to=question)
    escalation_services.conversation_take_over(
        conversation=Conversation.objects.get(pk=carlas_chat.pk), agent=agent
    )
    services.message_complete(message=pending, text="It is on its way.", outcome="answered")
    pending.refresh_from_db()
    assert pending.state == Message.State.FAILED and pending.text == ""


def test_a_transfer_to_a_queue_puts_it_back_in_waiting_with_a_note(waiting, agent):
    escalation_services.conversation_claim(conversation=waiting, agent=agent)
    escalation_services.conversation_transfer(conversation=waiting, agent=agent, to_queue="tier2")
    waiting.refresh_from_db()
    assert (waiting.status, waiting.queue, waiting.assigned_agent) == ("waiting", "tier2", None)
    note = waiting.messages.filter(internal=True).last()
    assert note.text == "Sam transferred it to Tier 2." and note.agent == agent


def test_a_transfer_to_a_colleague_makes_it_theirs(waiting, agent, admin_member):
    escalation_services.conversation_claim(conversation=waiting, agent=agent)
    escalation_services.conversation_transfer(
        conversation=waiting, agent=agent, to_agent=admin_member
    )
    waiting.refresh_from_db()
    assert (waiting.status, waiting.assigned_agent) == (Status.ACTIVE, admin_member)
    assert "Sam transferred it to Ian." in _texts(waiting, internal=True)
    assert "Ian joined the chat" in _texts(waiting, sender=Message.Sender.SYSTEM)
    step = waiting.transitions.last()
    assert (step.from_status, step.to_status, step.actor) == ("active", "active", agent)


def test_a_transfer_to_someone_of_another_organization_is_refused(waiting, agent, outsider):
    escalation_services.conversation_claim(conversation=waiting, agent=agent)
    with pytest.raises(ConversationStateError, match="not a member"):
        escalation_services.conversation_transfer(
            conversation=waiting, agent=agent, to_agent=outsider
        )
    waiting.refresh_from_db()
    assert waiting.assigned_agent == agent


def test_a_transfer_to_a_colleague_at_capacity_is_refused(waiting, agent, admin_member, carla):
    Membership.objects.filter(user=admin_member).update(capacity=1)
    ConversationFactory(customer=carla, status=Status.ACTIVE, assigned_agent=admin_member)
    with pytest.raises(ConversationStateError, match="Ian has 1 active"):
        escalation_services.conversation_transfer(
            conversation=waiting, agent=agent, to_agent=admin_member
        )


@pytest.mark.parametrize(
    "target", [{}, {"to_queue": "tier2", "to_agent": "x"}, {"to_queue": "vip"}]
)
def test_a_transfer_needs_one_known_target(waiting, agent, target):
    with pytest.raises(ConversationStateError):
        escalation_services.conversation_transfer(conversation=waiting, agent=agent, **target)


def test_resolving_ends_the_escalation(waiting, agent):
    escalation_services.conversation_claim(conversation=waiting, agent=agent)
    escalation_services.conversation_resolve(conversation=waiting, agent=agent)
    waiting.refresh_from_db()
    assert waiting.status == Status.RESOLVED and waiting.resolved_at
    assert EscalationLog.objects.get(conversation=waiting).resolved_at is not None
    assert waiting.transitions.last().reason == "Resolved by Sam"


def test_a_conversation_with_the_bot_cannot_be_resolved_here(carlas_chat, agent):
    with pytest.raises(ConversationStateError, match="only conversations with people"):
        escalation_services.conversation_resolve(conversation=carlas_chat, agent=agent)


def test_returning_to_the_bot_tells_the_customer_and_lets_the_bot_answer(waiting, agent):
    escalation_services.conversation_claim(conversation=waiting, agent=agent)
    escalation_services.conversation_return_to_bot(conversation=waiting, agent=agent)
    waiting.refresh_from_db()
    assert waiting.status == Status.AI and waiting.bot_may_answer
    assert (waiting.assigned_agent, waiting.handoff_at, waiting.response_due_at) == (None,) * 3
    assert _texts(waiting)[-1] == "You're back with the assistant."
    assert EscalationLog.objects.get(conversation=waiting).resolved_at is not None
    steps = list(waiting.transitions.values_list("from_status", "to_status", "actor"))[-1:]
    assert steps == [("active", "ai", agent.pk)]
    question = MessageFactory(conversation=waiting, text="And shipping?")
    assert services.message_start_bot(conversation=waiting, reply_to=question).state == "pending"


def test_the_reply_counts_as_the_first_response(waiting, agent):
    escalation_services.conversation_claim(conversation=waiting, agent=agent)
    message = escalation_services.conversation_reply(
        conversation=waiting, agent=agent, text="Hi Carla!"
    )
    assert (message.sender, message.agent, message.internal) == ("agent", agent, False)
    assert EscalationLog.objects.get(conversation=waiting).first_response_at is not None
    waiting.refresh_from_db()
    assert waiting.agent_seen_message_id == message.pk


def test_only_the_agent_who_has_it_replies(waiting, agent, admin_member):
    with pytest.raises(ConversationStateError, match="Claim or take over"):
        escalation_services.conversation_reply(conversation=waiting, agent=agent, text="Hello")
    escalation_services.conversation_claim(conversation=waiting, agent=admin_member)
    with pytest.raises(ConversationStateError, match="Ian has this conversation"):
        escalation_services.conversation_reply(conversation=waiting, agent=agent, text="Hello")
    assert not waiting.messages.filter(sender=Message.Sender.AGENT).exists()


def test_a_note_never_reaches_the_customer(
    waiting, agent, broadcasts, staff_broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        note = escalation_services.message_add_note(
            conversation=waiting, agent=agent, text="VIP, be nice"
        )
    assert note.internal and note.sender == Message.Sender.AGENT
    assert note not in selectors.messages_after(conversation=waiting)
    assert note in selectors.messages_after(conversation=waiting, internal=True)
    assert note not in selectors.conversation_window(conversation=waiting)
    assert not [p for g, _e, p in broadcasts if g == f"conv.{waiting.pk}"]
    assert [g for g, _e, _p in staff_broadcasts] == [f"staff.conv.{waiting.pk}"]


def test_an_empty_note_is_refused(waiting, agent):
    with pytest.raises(services.MessageRejected, match="empty"):
        escalation_services.message_add_note(conversation=waiting, agent=agent, text="   ")


def test_marking_seen_clears_the_unread_count_and_never_goes_back(waiting):
    first = MessageFactory(conversation=waiting)
    escalation_services.conversation_mark_seen(conversation=waiting)
    waiting.refresh_from_db()
    assert waiting.agent_seen_message_id == first.pk
    escalation_services.conversation_mark_seen(conversation=waiting, message_id=1)
    waiting.refresh_from_db()
    assert waiting.agent_seen_message_id == first.pk


def test_the_queue_partial_is_pushed_to_the_organization_on_a_claim(
    waiting, agent, broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        escalation_services.conversation_claim(conversation=waiting, agent=agent)
    queue = [p for g, e, p in broadcasts if e == "console.queue"]
    assert len(queue) == 1  # once per change, however many events it made
    assert 'id="queue"' in queue[0]["html"] and 'hx-swap-oob="true"' in queue[0]["html"]
    org = f"org.{waiting.bot.organization_id}"
    assert {g for g, e, _p in broadcasts if e == "console.queue"} == {org}


def test_a_bots_chat_does_not_re_render_the_queue_on_every_message(
    carlas_chat, broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.message_add_user(conversation=carlas_chat, text="Hello there")
    assert [e for _g, e, _p in broadcasts] == ["message.created", "conversation.updated"]
    assert [e for _g, e, _p in broadcasts if e == "console.queue"] == []


def test_the_customer_reads_the_name_the_agent_chose(
    waiting, agent, broadcasts, django_capture_on_commit_callbacks
):
    from bots.services import user_set_name

    user_set_name(user=agent, name="Sam Rivera")
    with django_capture_on_commit_callbacks(execute=True):
        escalation_services.conversation_claim(conversation=waiting, agent=agent)
        escalation_services.conversation_reply(
            conversation=waiting, agent=agent, text="Hello Carla"
        )
    customer = [
        p["message"] for g, e, p in broadcasts if g == f"conv.{waiting.pk}" and "message" in p
    ]
    assert "Sam Rivera joined the chat" in [m["text"] for m in customer]
    [reply] = [m for m in customer if m["text"] == "Hello Carla"]
    assert reply["agent_name"] == "Sam Rivera"
