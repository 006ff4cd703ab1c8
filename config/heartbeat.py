"""Heartbeats: a row's `updated_at` kept fresh while this process works on it.

Work that a crash can cut off (a bot's answer being written, a knowledge sync) is marked alive
this way, so "no heartbeat for a while" means the process doing it is gone and the work can be
taken over at once, instead of after a generous guess at how long the work may take. One
thread per process beats for every row it works on (one UPDATE per model and beat); it ends
when there are none, so an idle process holds no connection for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import close_old_connections
from django.utils import timezone

log = logging.getLogger(__name__)

# Five beats fit in the shortest staleness threshold (10 s, CHAT_PENDING_STALE_SECONDS): a busy
# process that misses a few is not taken for dead.
HEARTBEAT_SECONDS = 2.0

# (model, the filter that says the row is still being worked on) → the rows' ids.
_beating: dict[tuple, set[int]] = {}
_beating_lock = threading.Lock()
_beat_thread: threading.Thread | None = None


@contextmanager
def heartbeat(model, pk: int, **alive) -> Iterator[None]:
    """Bump `updated_at` of `model` row `pk` every HEARTBEAT_SECONDS while the block runs, as
    long as the row still matches `alive` (e.g. state="pending": a row another process failed
    is not revived)."""
    global _beat_thread
    key = (model, tuple(sorted(alive.items())))
    with _beating_lock:
        _beating.setdefault(key, set()).add(pk)
        # A thread started before a fork does not run in the child: is_alive() is False there.
        if _beat_thread is None or not _beat_thread.is_alive():
            _beat_thread = threading.Thread(target=_beat, name="heartbeat", daemon=True)
            _beat_thread.start()
    try:
        yield
    finally:
        with _beating_lock:
            _beating[key].discard(pk)
            if not _beating[key]:
                del _beating[key]


def _beat() -> None:
    global _beat_thread
    while True:
        time.sleep(HEARTBEAT_SECONDS)
        with _beating_lock:
            rows = [(key, sorted(ids)) for key, ids in _beating.items()]
            if not rows:
                _beat_thread = None
                return
        try:
            for (model, alive), ids in rows:
                model.objects.filter(pk__in=ids, **dict(alive)).update(updated_at=timezone.now())
        except Exception:
            log.exception("heartbeat failed")
        finally:
            close_old_connections()
