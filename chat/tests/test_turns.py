"""The one turn scheduler (chat.turns): whatever brings a conversation's messages in, the HTTP
API or the widget's socket, they are answered one after the other in the order they came, each
answer to its own question, the second written knowing the first."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from chat import turns
from chat.tests import fixtures_rt, test_consumers
from chat.tests.test_api import _chat
from chat.tests.test_consumers import _completed, _connect, _until
from conversations import services
from conversations.models import Message

fresh_rate_limits = fixtures_rt.fresh_rate_limits
scripted = fixtures_rt.scripted
shop_bot = test_consumers.shop_bot

pytestmark = [
    # The answers are written by worker threads, which see committed rows only.
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fresh_rate_limits"),
]

NORWAY, ICELAND = "Do you ship to Norway?", "And to Iceland?"
ANSWERS = {
    NORWAY: "Yes, Norway takes 4 to 6 business days.",
    ICELAND: "Yes, Iceland takes 7 to 9 business days.",
}


@database_sync_to_async
def _user_messages(conversation_id) -> int:
    return Message.objects.filter(
        conversation_id=conversation_id, sender=Message.Sender.USER
    ).count()


@database_sync_to_async
def _answers(conversation_id) -> list[tuple]:
    """The bot's answers in the order they were started: the question each replies to, its
    state and text, when it was started and when last written (completed)."""
    return list(
        Message.objects.filter(conversation_id=conversation_id, sender=Message.Sender.AI)
        .order_by("id")
        .values_list("reply_to__text", "state", "text", "created_at", "updated_at")
    )


async def _until_stored(conversation_id, count: int) -> None:
    async with asyncio.timeout(10):
        while await _user_messages(conversation_id) < count:
            await asyncio.sleep(0.02)


async def _hold_then_release(scripted, gate, conversation_id) -> None:
    """Both questions stored, and the first turn under way: the second must still wait (a turn
    run outside the conversation's line would be writing beside the first by now); then let the
    answers go."""
    try:
        await _until_stored(conversation_id, 2)
        async with asyncio.timeout(10):
            while not scripted.turns:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        assert [t.text for t in scripted.turns] == [NORWAY], "the second turn did not wait"
    finally:
        gate.set()


async def _assert_answered_in_order(scripted, conversation_id, *, in_flight_before: int) -> None:
    answers = await _answers(conversation_id)
    assert [(q, state, text) for q, state, text, _, _ in answers] == [
        (NORWAY, "complete", ANSWERS[NORWAY]),
        (ICELAND, "complete", ANSWERS[ICELAND]),
    ]
    # The second answer was started only once the first was complete...
    assert answers[1][3] >= answers[0][4]
    # ...and written knowing it.
    assert [t.text for t in scripted.turns] == [NORWAY, ICELAND]
    assert ("ai", ANSWERS[NORWAY]) in scripted.turns[1].history
    # The bookkeeping lets go of each turn as it ends (its thread's last step, after the push).
    # (Against the count before: an earlier test's turn may still be finishing.)
    async with asyncio.timeout(5):
        while turns.turns_in_flight() > in_flight_before:
            await asyncio.sleep(0.02)


async def test_two_api_messages_at_once_are_answered_one_after_the_other(
    async_client, acme_bot, carlas_chat, scripted
):
    scripted.answers = ANSWERS
    gate = scripted.hold()
    before = turns.turns_in_flight()
    conversation_id = carlas_chat.pk

    first, second, _ = await asyncio.gather(
        _chat(async_client, acme_bot, {"conversation_id": conversation_id, "message": NORWAY}),
        _chat(async_client, acme_bot, {"conversation_id": conversation_id, "message": ICELAND}),
        _hold_then_release(scripted, gate, conversation_id),
    )

    # Each stream carries its own question's answer, and only that.
    for (_response, events), question in [(first, NORWAY), (second, ICELAND)]:
        done = events[-1][1]
        assert events[-1][0] == "done" and done["text"] == ANSWERS[question]
        tokens = "".join(data["text"] for name, data in events if name == "token")
        assert tokens == ANSWERS[question]
    await _assert_answered_in_order(scripted, conversation_id, in_flight_before=before)


async def test_two_socket_messages_at_once_are_answered_one_after_the_other(shop_bot, scripted):
    scripted.answers = ANSWERS
    gate = scripted.hold()
    before = turns.turns_in_flight()
    ws, _ready = await _connect(shop_bot)
    await ws.send_json_to({"type": "message", "text": NORWAY})
    started = await _until(ws, lambda f: f["type"] == "conversation.updated")
    conversation_id = started[-1]["conversation"]["id"]
    await ws.send_json_to({"type": "message", "text": ICELAND})

    await _hold_then_release(scripted, gate, conversation_id)
    completed = []
    await _until(
        ws, lambda f: _completed(f) and completed.append(f) is None and len(completed) == 2
    )
    assert [f["message"]["text"] for f in completed] == [ANSWERS[NORWAY], ANSWERS[ICELAND]]
    await _assert_answered_in_order(scripted, conversation_id, in_flight_before=before)
    await ws.disconnect()


async def test_a_recovery_retry_waits_for_the_turn_being_written_in_its_conversation(
    carlas_chat, scripted
):
    """The sweep runs its turns in its own thread, in the same line as the sockets' and the
    API's: a retry never writes beside an answer this process is writing."""
    scripted.answers = ANSWERS
    gate = scripted.hold()
    before = turns.turns_in_flight()
    add = database_sync_to_async(services.message_add_user)
    norway, _ = await add(conversation=carlas_chat, text=NORWAY)
    iceland, _ = await add(conversation=carlas_chat, text=ICELAND)

    live = turns.turn_submit(message=norway)
    retry = asyncio.ensure_future(
        database_sync_to_async(turns.turn_run_here)(message=iceland, attempt=2)
    )
    await _hold_then_release(scripted, gate, carlas_chat.pk)
    await asyncio.wait_for(asyncio.gather(live, retry), timeout=20)
    await _assert_answered_in_order(scripted, carlas_chat.pk, in_flight_before=before)
