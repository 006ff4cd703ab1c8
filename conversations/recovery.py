"""What lets a crash cost seconds, not minutes: a heartbeat on answers being written, and one
recovery sweep at a time.

A pending answer's `updated_at` is its heartbeat: one thread per process bumps it every
HEARTBEAT_SECONDS for every answer the process is writing, from the moment the answer is saved
through retrieval and the model's silence to the last token. So an answer with no heartbeat for
CHAT_PENDING_STALE_SECONDS was cut off: the process writing it is gone. (Before, only streamed
tokens moved `updated_at`, and the extractive path sends its one token at the end: a sweep
failed answers that were still being written, and overlapping sweeps failed each other's
retries.)

The sweep (conversations.chat.turn_recover) runs in the serving process every few seconds from
its start, and in the worker every minute; a PostgreSQL advisory lock lets one run at a time
across all of them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import close_old_connections, connection
from django.utils import timezone

from conversations.models import Message

log = logging.getLogger(__name__)

# Five beats fit in the shortest CHAT_PENDING_STALE_SECONDS (10 s): a busy process that misses
# a few is not taken for dead.
HEARTBEAT_SECONDS = 2.0
# The advisory lock's key, one for the whole database ("hand" in ASCII).
LOCK_KEY = 0x68616E64
# A turn whose answer was cut off this many times (a question that crashes the server) goes to
# people instead of crashing it again. Cut-offs are not failed attempts (chat.MAX_ATTEMPTS):
# a deploy or a restart is not the turn's fault.
MAX_CUT_OFFS = 5

_beating: set[int] = set()
_beating_lock = threading.Lock()
_beat_thread: threading.Thread | None = None


@contextmanager
def heartbeat(message_id: int) -> Iterator[None]:
    """Keep the pending answer `message_id` alive while the block runs."""
    global _beat_thread
    with _beating_lock:
        _beating.add(message_id)
        # A thread started before a fork does not run in the child: is_alive() is False there.
        if _beat_thread is None or not _beat_thread.is_alive():
            _beat_thread = threading.Thread(target=_beat, name="answer-heartbeat", daemon=True)
            _beat_thread.start()
    try:
        yield
    finally:
        with _beating_lock:
            _beating.discard(message_id)


def _beat() -> None:
    """One UPDATE for all of this process's pending answers per beat; the thread ends when the
    process writes none, so an idle process holds no connection for it."""
    global _beat_thread
    while True:
        time.sleep(HEARTBEAT_SECONDS)
        with _beating_lock:
            ids = sorted(_beating)
            if not ids:
                _beat_thread = None
                return
        try:
            Message.objects.filter(pk__in=ids, state=Message.State.PENDING).update(
                updated_at=timezone.now()
            )
        except Exception:
            log.exception("heartbeat of pending answers %s failed", ids)
        finally:
            close_old_connections()


@contextmanager
def one_at_a_time() -> Iterator[bool]:
    """Yields whether this run holds the recovery lock; if not, another run (another process's)
    is at work and this one does nothing. A session lock: it outlives the run's transactions,
    and a killed process's connection takes it along."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
