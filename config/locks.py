"""One at a time across every process: PostgreSQL session advisory locks, by name.

Session locks, not transaction locks: they outlive the run's transactions (a recovery sweep or a
training commits as it goes), and a killed process's connection takes its locks along, so a
crash never leaves one held.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for `name` (PostgreSQL's advisory keys are bigints)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def try_lock(name: str) -> Iterator[bool]:
    """Yields whether this process now holds the lock `name`; if not, another process (or
    another connection of this one) holds it, and the caller leaves the work to it."""
    key = lock_key(name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
