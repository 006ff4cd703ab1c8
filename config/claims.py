"""One way to work through due rows with several workers at once: claim a row, handle it,
commit, take the next.

Each row is locked (FOR UPDATE SKIP LOCKED) in a transaction of its own while it is handled, so
two workers sweeping the same queryset never hold the same row: one skips what the other holds.
The handler must leave the row no longer due (sent, moved on, deadline pushed back) before its
lock is released, or another sweep may take it again; a row this sweep has claimed is not
claimed again by it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.db import transaction
from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)
R = TypeVar("R")


def claim_due(queryset: QuerySet[M], handle: Callable[[M], R], *, limit: int) -> list[R]:
    """Claim the rows of `queryset` one at a time, in its order, and call `handle(row)` for
    each inside that row's transaction, holding its lock; stop when none is left or after
    `limit` rows. Returns what `handle` returned, one result per row claimed.

    Only the queryset's own table is locked (`of=("self",)`), so it may select_related a
    nullable relation.
    """
    claimed: list = []
    results: list[R] = []
    while len(claimed) < limit:
        with transaction.atomic():
            row = (
                queryset.select_for_update(skip_locked=True, of=("self",))
                .exclude(pk__in=claimed)
                .first()
            )
            if row is None:
                break
            claimed.append(row.pk)
            results.append(handle(row))
    return results
