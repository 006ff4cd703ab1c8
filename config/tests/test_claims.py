"""config.claims: workers sweeping the same due rows at once never hold the same row."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection

from config.claims import claim_due

pytestmark = pytest.mark.django_db(transaction=True)


def _due():
    # A plain table stands for notifications or overdue conversations: a row is due while its
    # name starts with "due-", and handling it moves it out of the queryset.
    return Group.objects.filter(name__startswith="due-").order_by("id")


def _handle_as(worker: str, both_holding: threading.Barrier, handled: list):
    def handle(group: Group) -> int:
        if not any(who == worker for who, _pk in handled):
            # Each worker's first row waits here until the other holds a row too: both locks
            # are held at once, so the second claimer had to skip the first one's row.
            both_holding.wait(timeout=10)
        handled.append((worker, group.pk))
        group.name = f"done-{group.pk}"
        group.save(update_fields=["name"])
        return group.pk

    return handle


def test_two_concurrent_claimers_never_get_the_same_row():
    rows = [Group.objects.create(name=f"due-{n}").pk for n in range(8)]
    both_holding = threading.Barrier(2)
    handled: list[tuple[str, int]] = []
    results: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def sweep(worker: str) -> None:
        try:  # its own thread, so its own database connection
            results[worker] = claim_due(_due(), _handle_as(worker, both_holding, handled), limit=50)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=sweep, args=(name,)) for name in ("a", "b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)

    assert errors == []
    assert results["a"] and results["b"], "both workers claimed rows at the same time"
    claimed = results["a"] + results["b"]
    assert sorted(claimed) == sorted(rows), "every due row was handled exactly once"
    assert not _due().exists()


def test_it_stops_at_the_limit_and_claims_a_row_once_per_sweep():
    rows = [Group.objects.create(name=f"due-{n}").pk for n in range(5)]

    def leave_due(group: Group) -> int:  # like a failed attempt whose retry is due at once
        return group.pk

    assert claim_due(_due(), leave_due, limit=3) == rows[:3], "in the queryset's order"
    assert claim_due(_due(), leave_due, limit=50) == rows, "each row once, though still due"
