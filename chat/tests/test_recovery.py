"""Recovering answers a crash cut off: the heartbeat, one sweep at a time, what counts as a
failed attempt (chat.recovery). The crash itself, with real processes, is in
test_recovery_crash.py."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from chat import recovery, runner
from chat.tests import fixtures_rt
from config import heartbeat as beats
from config.locks import try_lock
from conversations import services
from conversations.models import Conversation, Message

scripted = fixtures_rt.scripted


def _ask(conversation, text="How long does shipping take?"):
    message, created = services.message_add_user(conversation=conversation, text=text)
    assert created
    return message


def _answers(conversation):
    return list(conversation.messages.filter(sender=Message.Sender.AI).order_by("id"))


def _age(message, seconds):
    then = timezone.now() - timedelta(seconds=seconds)
    Message.objects.filter(pk=message.pk).update(created_at=then, updated_at=then)


def _cut_off(conversation, message):
    """A pending answer whose process died: no heartbeat since, then the sweep fails it."""
    reply = services.message_start_bot(conversation=conversation, reply_to=message)
    _age(reply, 600)
    assert services.messages_fail_stale() == 1
    return reply


@pytest.mark.django_db(transaction=True)
def test_it_heartbeats_a_pending_answer_before_its_first_token(carlas_chat, scripted):
    # Retrieval and the extractive answer send no token for seconds: the answer must still
    # look alive, or a sweep fails it and a retry answers twice.
    gate = scripted.hold()
    message = _ask(carlas_chat)

    def run():
        try:
            list(runner.turn_run(message=message))
        finally:
            connection.close()

    turn = threading.Thread(target=run)
    turn.start()
    try:
        deadline = time.monotonic() + 10
        while not _answers(carlas_chat) and time.monotonic() < deadline:
            time.sleep(0.02)
        [pending] = _answers(carlas_chat)
        saved = pending.updated_at
        deadline = time.monotonic() + 3 * beats.HEARTBEAT_SECONDS
        while pending.updated_at == saved and time.monotonic() < deadline:
            time.sleep(0.1)
            pending.refresh_from_db()
        assert pending.state == Message.State.PENDING and pending.text == ""  # no token yet
        assert pending.updated_at > saved
    finally:
        gate.set()
        turn.join(timeout=20)
    [answer] = _answers(carlas_chat)
    assert answer.state == Message.State.COMPLETE


@pytest.mark.django_db
def test_recovery_runs_one_at_a_time(carlas_chat, scripted):
    message = _ask(carlas_chat)
    _age(message, 600)
    held, release = threading.Event(), threading.Event()

    def other_sweep():
        # Another process's sweep: the lock is per database, whichever connection takes it.
        from django.db import connection as own

        try:
            with try_lock(recovery.LOCK_NAME) as got:
                assert got
                held.set()
                release.wait(10)
        finally:
            own.close()

    other = threading.Thread(target=other_sweep)
    other.start()
    try:
        assert held.wait(10)
        assert recovery.turn_recover() == {"skipped": True}
        assert _answers(carlas_chat) == []
    finally:
        release.set()
        other.join(timeout=10)
    assert recovery.turn_recover()["retried"] == 1


@pytest.mark.django_db
def test_a_cut_off_answer_is_not_a_failed_attempt(carlas_chat, scripted):
    message = _ask(carlas_chat)
    for _ in range(runner.MAX_ATTEMPTS):
        _cut_off(carlas_chat, message)
    result = recovery.turn_recover()
    assert result["handed_off"] == 0 and result["retried"] == 1
    answer = _answers(carlas_chat)[-1]
    assert answer.state == Message.State.COMPLETE and answer.text == fixtures_rt.SHIPPING
    assert answer.trace["attempt"] == runner.MAX_ATTEMPTS + 1


@pytest.mark.django_db
def test_it_hands_off_a_turn_cut_off_again_and_again(carlas_chat, scripted):
    # A question that crashes the server each time must not crash it forever.
    message = _ask(carlas_chat)
    for _ in range(recovery.MAX_CUT_OFFS):
        _cut_off(carlas_chat, message)
    assert recovery.turn_recover()["handed_off"] == 1
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Conversation.Status.WAITING
    assert scripted.turns == []


@pytest.mark.django_db
def test_a_failed_attempt_still_counts(carlas_chat, scripted):
    message = _ask(carlas_chat)
    for _ in range(runner.MAX_ATTEMPTS):
        services.message_fail(
            message=services.message_start_bot(conversation=carlas_chat, reply_to=message),
            error="LLM timed out",
        )
    assert recovery.turn_recover()["handed_off"] == 1
