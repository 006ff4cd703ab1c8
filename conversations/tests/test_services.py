"""Customers, conversations and messages: identity, the state machine, the bot's turn, and the
events that go out only after commit."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from conversations import services
from conversations.models import Conversation, Customer, Message
from conversations.services import (
    ConversationStateError,
    CustomerIdentityError,
    MessageRejected,
    conversation_handoff,
    conversation_rate,
    conversation_resume,
    conversation_set_priority,
    conversation_set_status,
    conversation_start,
    customer_identify,
    identity_signature,
    message_add_agent,
    message_add_first,
    message_add_user,
    message_complete,
    message_fail,
    message_feedback,
    message_start_bot,
    message_stream,
    messages_fail_stale,
)
from conversations.tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db

Status = Conversation.Status


def answer(conversation, text="How do I reset my password?"):
    """Carla asks, the bot starts answering: (her message, the pending answer)."""
    question, _ = message_add_user(conversation=conversation, text=text)
    return question, message_start_bot(conversation=conversation, reply_to=question)


# --- Identity ---------------------------------------------------------------------------------
def test_it_keeps_one_anonymous_customer_per_visitor(acme_bot):
    first = customer_identify(bot=acme_bot, visitor_id="browser-abc-123")
    again = customer_identify(bot=acme_bot, visitor_id="browser-abc-123", name="Carla")
    assert again.pk == first.pk
    assert again.name == "Carla"
    assert not again.verified


@pytest.mark.parametrize(
    "visitor_id", ["short", "x" * 65, "has spaces 1234", "<script>x</script>", "ünïcödé-1234"]
)
def test_it_refuses_a_malformed_visitor_id(acme_bot, visitor_id):
    with pytest.raises(CustomerIdentityError, match="8 to 64"):
        customer_identify(bot=acme_bot, visitor_id=visitor_id)
    assert not Customer.objects.exists()


def test_it_follows_a_signed_user_id_across_devices(acme_bot):
    signature = identity_signature(bot=acme_bot, user_id="user-42")
    laptop = customer_identify(
        bot=acme_bot, visitor_id="vera-laptop-1", user_id="user-42", user_hash=signature
    )
    phone = customer_identify(
        bot=acme_bot, visitor_id="vera-phone-01", user_id="user-42", user_hash=signature.upper()
    )
    assert phone.pk == laptop.pk
    assert phone.verified and phone.external_id == "user-42"
    assert phone.visitor_id == "vera-phone-01"


def test_it_refuses_a_user_id_signed_with_the_wrong_key(acme_bot, globex_bot):
    other_bots_signature = identity_signature(bot=globex_bot, user_id="user-42")
    with pytest.raises(CustomerIdentityError, match="signature does not match"):
        customer_identify(
            bot=acme_bot, visitor_id="browser-abc-123", user_id="user-42", user_hash="f" * 64
        )
    with pytest.raises(CustomerIdentityError, match="signature does not match"):
        customer_identify(
            bot=acme_bot,
            visitor_id="browser-abc-123",
            user_id="user-42",
            user_hash=other_bots_signature,
        )
    assert not Customer.objects.exists()


def test_it_refuses_a_user_id_without_a_signature(acme_bot):
    with pytest.raises(CustomerIdentityError, match="signature"):
        customer_identify(bot=acme_bot, visitor_id="browser-abc-123", user_id="user-42")
    assert not Customer.objects.exists()


def test_it_merges_attributes_and_updates_contact_details(carla):
    customer_identify(bot=carla.bot, visitor_id=carla.visitor_id, attributes={"plan": "pro"})
    customer = customer_identify(
        bot=carla.bot,
        visitor_id=carla.visitor_id,
        email=" carla@example.com ",
        attributes={"orders": 3},
    )
    assert customer.pk == carla.pk
    assert customer.email == "carla@example.com"
    assert customer.name == "Carla"  # not given, so kept
    assert customer.attributes == {"plan": "pro", "orders": 3}


@pytest.mark.parametrize(
    "attributes, message",
    [
        ({f"key{n}": n for n in range(51)}, "at most 50 attributes"),
        ({"notes": "x" * 5000}, "at most 4096 bytes"),
        ({"when": timezone.now()}, "plain JSON"),
        ({"ratio": float("nan")}, "plain JSON"),
        (["not", "an", "object"], "object of names"),
    ],
)
def test_it_refuses_attributes_too_many_too_large_or_not_json(acme_bot, attributes, message):
    with pytest.raises(CustomerIdentityError, match=message):
        customer_identify(bot=acme_bot, visitor_id="browser-abc-123", attributes=attributes)
    assert not Customer.objects.exists()


def test_it_refuses_an_email_that_is_not_one(acme_bot):
    with pytest.raises(CustomerIdentityError, match="not an e-mail address"):
        customer_identify(bot=acme_bot, visitor_id="browser-abc-123", email="carla at home")


# --- Starting and resuming --------------------------------------------------------------------
def test_it_announces_a_new_conversation_to_the_organization_after_commit(
    carla, broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        conversation = conversation_start(bot=carla.bot, customer=carla)
    assert conversation.status == Status.AI
    assert broadcasts == []  # nothing before commit
    for callback in callbacks:
        callback()
    [(group, event, payload)] = broadcasts
    assert (group, event) == (f"org.{carla.bot.organization_id}", "conversation.created")
    assert payload["conversation"]["id"] == conversation.pk


def test_it_resumes_the_customers_named_conversation(carla, carlas_chat):
    ConversationFactory(customer=carla)  # a newer one
    assert conversation_resume(bot=carla.bot, customer=carla, conversation_id=carlas_chat.pk) == (
        carlas_chat
    )


def test_it_never_resumes_another_customers_conversation(carla, carlas_chat, dan):
    resumed = conversation_resume(bot=dan.bot, customer=dan, conversation_id=carlas_chat.pk)
    assert resumed is None


def test_it_resumes_the_latest_open_conversation_instead_of_a_closed_one(carla, carlas_chat):
    closed = ConversationFactory(customer=carla, status=Status.CLOSED)
    resumed = conversation_resume(bot=carla.bot, customer=carla, conversation_id=closed.pk)
    assert resumed == carlas_chat


def test_it_starts_nothing_when_there_is_no_open_conversation(carla):
    ConversationFactory(customer=carla, status=Status.CLOSED)
    ConversationFactory(customer=carla, status=Status.RESOLVED)
    assert conversation_resume(bot=carla.bot, customer=carla, conversation_id=None) is None
    assert carla.conversations.count() == 2


def test_a_customer_not_seen_before_is_checked_but_not_stored_without_create(acme_bot):
    assert customer_identify(bot=acme_bot, visitor_id="browser-abc-123", create=False) is None
    with pytest.raises(CustomerIdentityError):
        customer_identify(bot=acme_bot, visitor_id="no", create=False)
    assert not Customer.objects.exists()


def test_a_known_customer_is_updated_without_create(carla):
    found = customer_identify(
        bot=carla.bot, visitor_id=carla.visitor_id, email="carla@example.com", create=False
    )
    assert found == carla and found.email == "carla@example.com"


def test_a_refused_first_message_starts_no_conversation(carla):
    with pytest.raises(MessageRejected):
        message_add_first(bot=carla.bot, customer=carla, channel="widget", text="  ")
    assert not carla.conversations.exists()


def test_a_first_message_starts_a_conversation_and_a_resend_returns_it(carla, carlas_chat):
    carlas_chat.status = Status.RESOLVED
    carlas_chat.save(update_fields=["status"])
    first, created = message_add_first(
        bot=carla.bot, customer=carla, channel="widget", text="Hi", client_message_id="c-1"
    )
    assert created and first.conversation != carlas_chat
    again, created = message_add_first(
        bot=carla.bot, customer=carla, channel="widget", text="Hi", client_message_id="c-1"
    )
    assert (again, created) == (first, False)
    assert carla.conversations.count() == 2


# --- The customer's messages ------------------------------------------------------------------
def test_it_stores_a_message_and_broadcasts_it_only_after_commit(
    carlas_chat, broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message, created = message_add_user(conversation=carlas_chat, text="  Hello there  ")
    assert created and message.text == "Hello there"
    assert broadcasts == []
    for callback in callbacks:
        callback()
    events = {(group, event) for group, event, _ in broadcasts}
    assert events == {
        (f"conv.{carlas_chat.pk}", "message.created"),
        (f"org.{carlas_chat.bot.organization_id}", "conversation.updated"),
    }
    payload = broadcasts[0][2]["message"]
    assert payload["text"] == "Hello there"
    assert "trace" not in payload  # members only
    carlas_chat.refresh_from_db()
    assert carlas_chat.last_message_at == message.created_at


def test_it_sends_nothing_when_the_transaction_rolls_back(
    carlas_chat, broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            message_add_user(conversation=carlas_chat, text="Hello")
            raise RuntimeError("the request failed after the write")
    assert callbacks == [] and broadcasts == []
    assert not Message.objects.exists()


def test_it_rejects_a_20000_character_message_and_saves_nothing(
    carlas_chat, settings, django_capture_on_commit_callbacks
):
    settings.CHAT_MAX_MESSAGE_CHARS = 4000
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(MessageRejected) as rejected:
            message_add_user(conversation=carlas_chat, text="a" * 20_000)
    assert str(rejected.value).startswith("Your message is 20000 characters; the limit is 4000.")
    assert not Message.objects.exists() and callbacks == []


@pytest.mark.parametrize("text", ["", "   \n\t ", "\x00"])
def test_it_rejects_an_empty_message(carlas_chat, text):
    with pytest.raises(MessageRejected, match="empty"):
        message_add_user(conversation=carlas_chat, text=text)
    assert not Message.objects.exists()


def test_it_rejects_a_message_to_a_closed_conversation(carla):
    closed = ConversationFactory(customer=carla, status=Status.CLOSED)
    with pytest.raises(MessageRejected, match="closed"):
        message_add_user(conversation=closed, text="Hello?")
    assert not Message.objects.exists()


def test_it_stores_markup_verbatim(carlas_chat):
    # Escaping is the renderer's job; the text is the customer's, byte for byte.
    text = "<script>alert('hi')</script> & <b>bold</b>"
    message, _ = message_add_user(conversation=carlas_chat, text=text)
    message.refresh_from_db()
    assert message.text == text


def test_a_resent_message_is_recognised_not_stored_twice(
    carlas_chat, broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first, created = message_add_user(
            conversation=carlas_chat, text="Hello", client_message_id="c-1"
        )
    sent_before = len(broadcasts)
    with django_capture_on_commit_callbacks(execute=True):
        again, created_again = message_add_user(
            conversation=carlas_chat, text="Hello", client_message_id="c-1"
        )
    assert created and not created_again
    assert again.pk == first.pk
    assert carlas_chat.messages.count() == 1
    assert len(broadcasts) == sent_before  # no second announcement


def test_a_duplicate_that_wins_the_insert_race_is_returned(carlas_chat, monkeypatch):
    # Another request stored the same client id between our check and our insert: the unique
    # constraint stops ours, and the stored one comes back.
    winner = MessageFactory(conversation=carlas_chat, text="Hello", client_message_id="c-1")
    real_sent = services.messages._sent_message
    checks = []

    def sent_message(*args):
        checks.append(args)
        return None if len(checks) == 1 else real_sent(*args)  # the first check misses it

    monkeypatch.setattr(services.messages, "_sent_message", sent_message)
    message, created = message_add_user(
        conversation=carlas_chat, text="Hello", client_message_id="c-1"
    )
    assert (message.pk, created) == (winner.pk, False)
    assert len(checks) == 2  # the insert was tried and refused
    assert carlas_chat.messages.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_sends_of_one_message_store_it_once(carlas_chat):
    barrier = threading.Barrier(2)
    results = []

    def send():
        try:
            barrier.wait()
            results.append(
                message_add_user(conversation=carlas_chat, text="Hello", client_message_id="c-1")
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(created for _, created in results) == [False, True]
    assert len({message.pk for message, _ in results}) == 1
    assert Message.objects.count() == 1


def test_it_reopens_a_conversation_resolved_by_the_bot_with_the_bot(carlas_chat):
    conversation_set_status(conversation=carlas_chat, status=Status.RESOLVED)
    assert carlas_chat.resolved_at is not None
    message_add_user(conversation=carlas_chat, text="One more question")
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Status.AI
    assert carlas_chat.resolved_at is None


def test_it_reopens_a_conversation_that_had_been_handed_off_in_the_queue(carlas_chat, agent):
    conversation_handoff(conversation=carlas_chat, reason="Asked for a person")
    conversation_set_status(conversation=carlas_chat, status=Status.ACTIVE, agent=agent)
    conversation_set_status(conversation=carlas_chat, status=Status.RESOLVED)
    message_add_user(conversation=carlas_chat, text="It broke again")
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Status.WAITING
    assert carlas_chat.assigned_agent is None


def test_an_angry_message_makes_the_conversation_negative(carlas_chat):
    message_add_user(conversation=carlas_chat, text="This is terrible. I am furious, it's awful!")
    carlas_chat.refresh_from_db()
    assert carlas_chat.sentiment < -0.5


def test_sentiment_is_the_mean_of_the_last_three_customer_messages(carlas_chat):
    message_add_user(conversation=carlas_chat, text="This is terrible and I hate it!")
    for text in ["Thanks, great, that's wonderful!", "Okay.", "Order 1234"]:
        message_add_user(conversation=carlas_chat, text=text)
    scores = [m.trace["sentiment"] for m in carlas_chat.messages.order_by("id")][1:]
    carlas_chat.refresh_from_db()
    assert carlas_chat.sentiment == pytest.approx(sum(scores) / 3, abs=1e-3)
    assert carlas_chat.sentiment > 0  # the angry first message has left the window


# --- The state machine ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "start, end",
    [(start, end) for start, ends in services.TRANSITIONS.items() for end in ends],
)
def test_it_makes_every_legal_move(carla, agent, start, end):
    conversation = ConversationFactory(customer=carla, status=start, assigned_agent=agent)
    conversation_set_status(conversation=conversation, status=end, agent=agent)
    conversation.refresh_from_db()
    assert conversation.status == end


@pytest.mark.parametrize(
    "start, end",
    [
        (Status.CLOSED, Status.AI),
        (Status.CLOSED, Status.WAITING),
        (Status.AI, Status.ACTIVE),
        (Status.RESOLVED, Status.ACTIVE),
    ],
)
def test_it_refuses_an_illegal_move(carla, agent, start, end):
    conversation = ConversationFactory(customer=carla, status=start)
    with pytest.raises(ConversationStateError, match="cannot become"):
        conversation_set_status(conversation=conversation, status=end, agent=agent)
    conversation.refresh_from_db()
    assert conversation.status == start


def test_a_conversation_becomes_active_only_with_an_agent(carla):
    waiting = ConversationFactory(customer=carla, status=Status.WAITING)
    with pytest.raises(ConversationStateError, match="agent"):
        conversation_set_status(conversation=waiting, status=Status.ACTIVE)


def test_setting_the_same_status_again_changes_nothing(
    carlas_chat, broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        conversation_set_status(conversation=carlas_chat, status=Status.AI)
    assert broadcasts == []


def test_giving_the_conversation_back_to_the_bot_ends_the_handoff(carlas_chat):
    conversation_handoff(conversation=carlas_chat, reason="Asked for a person")
    conversation_set_status(conversation=carlas_chat, status=Status.AI)
    assert (carlas_chat.handoff_at, carlas_chat.handoff_reason) == (None, "")
    assert carlas_chat.bot_may_answer


# --- Handoff ----------------------------------------------------------------------------------
def test_it_hands_off_to_the_queue_and_tells_the_customer(
    carlas_chat, broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        conversation_handoff(conversation=carlas_chat, reason="Angry customer", priority="high")
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Status.WAITING
    assert carlas_chat.handoff_reason == "Angry customer"
    assert carlas_chat.priority == "high" and carlas_chat.handoff_at is not None
    notice = carlas_chat.messages.get()
    assert (notice.sender, notice.text) == ("system", "Connecting you with a person…")
    by_group = {(group.split(".")[0], event): payload for group, event, payload in broadcasts}
    assert by_group[("conv", "message.created")]["message"]["id"] == notice.pk
    assert by_group[("org", "conversation.updated")]["conversation"]["handoff_reason"] == (
        "Angry customer"
    )
    # The customer learns the status, not why or how urgently.
    customer_view = by_group[("conv", "conversation.updated")]["conversation"]
    assert customer_view["status"] == "waiting"
    assert "handoff_reason" not in customer_view and "priority" not in customer_view


def test_handing_off_twice_is_one_handoff(carlas_chat):
    conversation_handoff(conversation=carlas_chat, reason="Asked for a person")
    conversation_handoff(conversation=carlas_chat, reason="Low confidence", priority="urgent")
    carlas_chat.refresh_from_db()
    assert carlas_chat.handoff_reason == "Asked for a person"
    assert carlas_chat.messages.count() == 1


def test_a_closed_conversation_cannot_be_handed_off(carla):
    closed = ConversationFactory(customer=carla, status=Status.CLOSED)
    with pytest.raises(ConversationStateError):
        conversation_handoff(conversation=closed, reason="Asked for a person")


# --- The bot's turn ---------------------------------------------------------------------------
def test_it_streams_and_completes_an_answer(
    carlas_chat, broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        question, reply = answer(carlas_chat)
        assert reply.state == Message.State.PENDING and reply.text == ""
        message_stream(message=reply, text="Open Settings")
        reply.refresh_from_db()
        assert reply.text == "Open Settings"
        message_complete(
            message=reply,
            text="Open Settings, then Security [1].",
            outcome="answered",
            confidence=0.82,
            citations=[{"n": 1, "chunk_id": 7, "document_id": 3, "title": "Reset", "url": ""}],
            extras={"suggestions": ["Still stuck?"]},
            trace={"retrieve": {"chunks": [7]}},
        )
    reply.refresh_from_db()
    assert reply.state == Message.State.COMPLETE
    assert reply.reply_to == question and reply.confidence == 0.82
    assert reply.trace == {"retrieve": {"chunks": [7]}}
    events = [(event, p["message"]["state"]) for _, event, p in broadcasts if "message" in p]
    assert events[-2:] == [("message.created", "complete"), ("message.updated", "complete")]
    final = broadcasts[-1][2]["message"]
    assert final["citations"][0]["chunk_id"] == 7 and "trace" not in final


def test_the_bot_cannot_start_answering_after_a_handoff(carlas_chat):
    question, _ = message_add_user(conversation=carlas_chat, text="I want a human")
    conversation_handoff(conversation=carlas_chat, reason="Asked for a person")
    with pytest.raises(ConversationStateError, match="does not answer"):
        message_start_bot(conversation=carlas_chat, reply_to=question)
    assert not carlas_chat.messages.filter(sender="ai").exists()


def test_the_bot_checks_the_stored_status_not_a_stale_copy(carlas_chat):
    question, _ = message_add_user(conversation=carlas_chat, text="Hello")
    stale_copy = Conversation.objects.get(pk=carlas_chat.pk)
    conversation_handoff(conversation=carlas_chat, reason="Asked for a person")
    with pytest.raises(ConversationStateError):
        message_start_bot(conversation=stale_copy, reply_to=question)


def test_the_bot_answers_each_customer_message_once(carlas_chat):
    question, _ = answer(carlas_chat)
    with pytest.raises(ConversationStateError, match="already has an answer"):
        message_start_bot(conversation=carlas_chat, reply_to=question)


def test_an_answer_finished_after_a_person_took_over_is_not_sent(carlas_chat, agent):
    _, reply = answer(carlas_chat)
    message_stream(message=reply, text="Open")
    message_add_agent(conversation=carlas_chat, agent=agent, text="Hi, Sam here.")
    message_complete(message=reply, text="Open Settings.", outcome="answered")
    reply.refresh_from_db()
    assert reply.state == Message.State.FAILED
    assert reply.text == ""
    assert reply.trace["unsent_text"] == "Open Settings."
    assert "before the answer was complete" in reply.trace["error"]


def test_it_fails_an_answer_with_the_error_in_its_trace(
    carlas_chat, broadcasts, django_capture_on_commit_callbacks
):
    _, reply = answer(carlas_chat)
    with django_capture_on_commit_callbacks(execute=True):
        message_fail(message=reply, error="LLM timed out after 15 s")
    reply.refresh_from_db()
    assert reply.state == Message.State.FAILED
    assert reply.trace["error"] == "LLM timed out after 15 s"
    [(_, event, payload)] = broadcasts
    assert event == "message.updated" and payload["message"]["state"] == "failed"


def test_it_fails_stale_pending_answers(carlas_chat, settings):
    settings.CHAT_PENDING_STALE_SECONDS = 120
    _, cut_off = answer(carlas_chat, "First question")
    long_ago = timezone.now() - timedelta(seconds=300)
    Message.objects.filter(pk=cut_off.pk).update(created_at=long_ago, updated_at=long_ago)
    _, fresh = answer(ConversationFactory(customer=carlas_chat.customer), "Second question")
    assert messages_fail_stale() == 1
    cut_off.refresh_from_db()
    fresh.refresh_from_db()
    assert cut_off.state == Message.State.FAILED and "No heartbeat" in cut_off.trace["error"]
    assert fresh.state == Message.State.PENDING
    assert messages_fail_stale() == 0


def test_a_late_token_or_answer_does_not_revive_a_failed_message(carlas_chat):
    _, reply = answer(carlas_chat)
    message_fail(message=reply, error="cut off")
    message_stream(message=reply, text="late token")
    message_complete(message=reply, text="late answer", outcome="answered")
    reply.refresh_from_db()
    assert reply.state == Message.State.FAILED and reply.text == ""


# --- Agents, feedback, ratings ----------------------------------------------------------------
def test_an_agents_message_takes_the_conversation_from_the_bot(
    carlas_chat, agent, broadcasts, django_capture_on_commit_callbacks
):
    question, _ = message_add_user(conversation=carlas_chat, text="Hello")
    with django_capture_on_commit_callbacks(execute=True):
        message = message_add_agent(conversation=carlas_chat, agent=agent, text="Sam here!")
    carlas_chat.refresh_from_db()
    # Taken, and answered: the customer's turn, the conversation still Sam's.
    assert carlas_chat.status == Status.AWAITING and carlas_chat.assigned_agent == agent
    moves = [(t.from_status, t.to_status) for t in carlas_chat.transitions.all()]
    assert moves == [("ai", "waiting"), ("waiting", "active"), ("active", "awaiting_customer")]
    assert broadcasts[0][2]["message"]["agent_name"] == "Sam"
    assert message.agent == agent
    with pytest.raises(ConversationStateError):
        message_start_bot(conversation=carlas_chat, reply_to=question)


def test_feedback_goes_only_on_the_bots_answers(carlas_chat):
    question, reply = answer(carlas_chat)
    message_complete(message=reply, text="Open Settings.", outcome="answered")
    message_feedback(message=reply, value=-1)
    reply.refresh_from_db()
    assert reply.feedback == -1
    with pytest.raises(ValueError, match="bot's answers"):
        message_feedback(message=question, value=1)
    with pytest.raises(ValueError, match="1 .helpful. or -1"):
        message_feedback(message=reply, value=5)


def test_it_records_a_satisfaction_score_from_1_to_5(carlas_chat):
    conversation_set_status(conversation=carlas_chat, status="resolved", resolution="agent")
    for score in (0, 6, True):
        with pytest.raises(ValueError, match="1 to 5"):
            conversation_rate(conversation=carlas_chat, score=score)
    conversation_rate(conversation=carlas_chat, score=4)
    carlas_chat.refresh_from_db()
    assert carlas_chat.csat == 4


def test_it_sets_the_priority(carlas_chat):
    conversation_set_priority(conversation=carlas_chat, priority="urgent")
    carlas_chat.refresh_from_db()
    assert carlas_chat.priority == "urgent"
    with pytest.raises(ValueError):
        conversation_set_priority(conversation=carlas_chat, priority="whenever")


def test_the_console_hears_every_message_the_customer_does(
    carlas_chat, broadcasts, staff_broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message, _ = message_add_user(conversation=carlas_chat, text="Hello")
    [(group, event, payload)] = staff_broadcasts
    assert (group, event) == (f"staff.conv.{carlas_chat.pk}", "message.created")
    assert payload["message"]["id"] == message.pk


def test_an_internal_note_never_reaches_the_customer(
    carlas_chat, agent, broadcasts, staff_broadcasts, django_capture_on_commit_callbacks
):
    from conversations.selectors import conversation_window, messages_after

    with django_capture_on_commit_callbacks(execute=True):
        note = MessageFactory(
            conversation=carlas_chat, sender="agent", agent=agent, text="VIP", internal=True
        )
        services.common._broadcast_message("message.created", note)
    assert [g for g, _, _ in staff_broadcasts] == [f"staff.conv.{carlas_chat.pk}"]
    assert broadcasts == []
    assert messages_after(conversation=carlas_chat) == []
    assert messages_after(conversation=carlas_chat, internal=True) == [note]
    assert conversation_window(conversation=carlas_chat) == []


def test_every_status_change_is_recorded_with_who_and_why(carlas_chat, agent):
    conversation_handoff(conversation=carlas_chat, reason="Asked for a person")
    conversation_set_status(conversation=carlas_chat, status=Status.ACTIVE, agent=agent)
    steps = list(carlas_chat.transitions.values_list("from_status", "to_status", "actor", "reason"))
    assert steps == [
        ("ai", "waiting", None, "Asked for a person"),
        ("waiting", "active", agent.pk, ""),
    ]
