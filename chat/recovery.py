"""What lets a crash cost seconds, not minutes: a heartbeat on answers being written, and one
recovery sweep at a time, which fails the answers a crash cut off and answers again.

A pending answer's `updated_at` is its heartbeat (chat.runner.heartbeat, config/heartbeat.py):
bumped every 2 s while the process writes it, from the moment the answer is saved through
retrieval and the model's silence to the last token. So an answer with no heartbeat for
CHAT_PENDING_STALE_SECONDS was cut off: the process writing it is gone. (Before, only streamed
tokens moved `updated_at`, and the extractive path sends its one token at the end: a sweep
failed answers that were still being written, and overlapping sweeps failed each other's
retries.)

The sweep (turn_recover) runs in the serving process every few seconds from its start, and in
the worker every minute; a PostgreSQL advisory lock lets one run at a time across all of them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from chat import runner, turns
from config import locks
from conversations import selectors, services
from conversations.models import Message
from knowledge import services as knowledge_services

log = logging.getLogger(__name__)

# The advisory lock's name (config.locks): one sweep at a time for the whole database.
LOCK_NAME = "chat.turn_recover"
# A turn whose answer was cut off this many times (a question that crashes the server) goes to
# people instead of crashing it again. Cut-offs are not failed attempts (runner.MAX_ATTEMPTS):
# a deploy or a restart is not the turn's fault.
MAX_CUT_OFFS = 5
# Older customer messages are not answered by the recovery: the customer has gone.
RECOVER_WITHIN = timedelta(hours=1)
RECOVER_BATCH = 10  # a run stays well within the worker timeout (600 s)


# --- The sweep: the serving process every few seconds, the worker every minute ---------------
def turn_recover() -> dict:
    """Finish turns a crash or restart cut off; one run at a time across all processes (a run
    that finds another at work returns {"skipped": True}).

    Fails bot answers whose heartbeat stopped (services.messages_fail_stale), then answers
    again each conversation's latest customer message that still has no answer: its answer
    failed or was cut off, or it never got one. A message whose answer failed
    runner.MAX_ATTEMPTS times, or was cut off MAX_CUT_OFFS times, goes to people instead, with
    a note to the customer. Each retry's trace records its attempt number.
    """
    # A session lock: it outlives the run's transactions, and a killed process's connection
    # takes it along.
    with locks.try_lock(LOCK_NAME) as held:
        if not held:
            return {"skipped": True}
        failed = services.messages_fail_stale()
        stale_before = timezone.now() - timedelta(seconds=settings.CHAT_PENDING_STALE_SECONDS)
        retried = handed_off = 0
        unanswered = selectors.messages_unanswered(
            since=timezone.now() - RECOVER_WITHIN, stale_before=stale_before, limit=RECOVER_BATCH
        )
        for message in unanswered:
            errors = message.bot_attempts - message.bot_cut_offs
            if errors >= runner.MAX_ATTEMPTS or message.bot_cut_offs >= MAX_CUT_OFFS:
                _recover_give_up(message, errors=errors)
                handed_off += 1
                continue
            # In the conversation's line, like every turn: after a turn this process is
            # still writing for it (chat.turns).
            turns.turn_run_here(message=message, attempt=message.bot_attempts + 1)
            retried += 1
    if failed or retried or handed_off:
        log.info("turn recovery: %s stale, %s retried, %s handed off", failed, retried, handed_off)
    return {"stale": failed, "retried": retried, "handed_off": handed_off}


_recovering_pid: int | None = None


def turn_recover_start() -> None:
    """Sweep every CHAT_RECOVER_EVERY_SECONDS in this serving process, from now on, for answers
    a crash cut off (and knowledge syncs whose worker died); call it on the server's event loop
    (config/asgi.py does, on the first request the process serves).

    So a restarted server finishes what it was writing when it died as soon as those answers'
    heartbeat is stale, instead of at the worker's next minute. On this event loop, through
    asgiref, the retried answers reach the sockets of this process, the in-memory channel
    layer's included.
    """
    global _recovering_pid
    if not settings.CHAT_RECOVER_EVERY_SECONDS or _recovering_pid == os.getpid():
        return
    _recovering_pid = os.getpid()
    task = asyncio.get_running_loop().create_task(_recover_forever())
    _recover_tasks.add(task)


_recover_tasks: set[asyncio.Task] = set()  # referenced, so the loop does not drop the task


async def _recover_forever() -> None:
    run = sync_to_async(_recover_round, thread_sensitive=False)
    while True:
        try:
            await run()
        except Exception:
            # The database is away (a restart of its own): the next round tries again.
            log.exception("turn recovery failed")
        await asyncio.sleep(settings.CHAT_RECOVER_EVERY_SECONDS)


def _recover_round() -> None:
    try:
        turn_recover()
        # Knowledge syncs whose worker died are queued again here too: within seconds of
        # their lease running out, instead of at the worker's next minute.
        knowledge_services.sources_requeue_stalled()
    finally:
        close_old_connections()


def _recover_give_up(message: Message, *, errors: int) -> None:
    conversation = message.conversation
    if errors >= runner.MAX_ATTEMPTS:
        reason = f"The bot failed to answer {errors} times."
    else:
        reason = f"The bot's answer was cut off {message.bot_cut_offs} times (crashes, restarts)."
    with transaction.atomic():
        services.message_add_system(conversation=conversation, text=runner.FAILURE_NOTE)
        runner.escalate_error(conversation=conversation, message=message, reason=reason)
