"""What lets a crash cost seconds, not minutes: a heartbeat on answers being written, and one
recovery sweep at a time.

A pending answer's `updated_at` is its heartbeat (config/heartbeat.py): bumped every 2 s while
the process writes it, from the moment the answer is saved through retrieval and the model's
silence to the last token. So an answer with no heartbeat for
CHAT_PENDING_STALE_SECONDS was cut off: the process writing it is gone. (Before, only streamed
tokens moved `updated_at`, and the extractive path sends its one token at the end: a sweep
failed answers that were still being written, and overlapping sweeps failed each other's
retries.)

The sweep (conversations.chat.turn_recover) runs in the serving process every few seconds from
its start, and in the worker every minute; a PostgreSQL advisory lock lets one run at a time
across all of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from config import heartbeat as beats
from conversations.models import Message

# The advisory lock's key, one for the whole database ("hand" in ASCII).
LOCK_KEY = 0x68616E64
# A turn whose answer was cut off this many times (a question that crashes the server) goes to
# people instead of crashing it again. Cut-offs are not failed attempts (chat.MAX_ATTEMPTS):
# a deploy or a restart is not the turn's fault.
MAX_CUT_OFFS = 5


def heartbeat(message_id: int):
    """Keep the pending answer `message_id` alive while the block runs."""
    return beats.heartbeat(Message, message_id, state=Message.State.PENDING)


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
