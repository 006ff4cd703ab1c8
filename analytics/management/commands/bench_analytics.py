"""The analytics dashboard at scale, for `make bench`.

A throw-away organization gets 100,000 conversations and 1,000,000 messages (ten per
conversation) over the 90 days before today, with their transitions, escalations, agents'
replies and ratings, written with COPY (the ORM would take longer than the measurement). Then:

1. the full rollup of those 90 days (what a first deploy, or demo_history, runs);
2. `dashboard()` for the 90-day view, as an owner's page load asks for it, 50 times: p50, p95
   (target: p95 ≤ 300 ms on this 2-core machine);
3. one day of new data (a 90th of the history, stamped today) and the incremental refresh that
   the worker's next minute runs for it.

Everything generated is deleted at the end, whatever happens. `--conversations` scales it
down (tests run it with a few hundred).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import timedelta

import numpy as np
from django.core.management.base import BaseCommand
from django.db import connection, models, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from analytics.definitions import day_start
from analytics.selectors import dashboard, filters_from
from analytics.services import rollups_refresh
from bots.models import Bot, Membership, Organization, Role, User
from conversations.models import Conversation, Customer, Message, Transition
from escalation.models import EscalationLog, EscalationRule

TARGET_P95_MS = 300
MESSAGES_PER_CONVERSATION = 10
# Conversations per local hour: quiet nights, a morning and an afternoon peak.
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 14, 12, 10, 12, 14, 14, 12, 10, 8, 6, 4, 3, 2, 1]
TITLES = [f"Help article {n}" for n in range(40)]
TRIGGERS = ["human_request", "keywords", "sentiment", "low_confidence", "frustration"]


def _stats(ms: list[float]) -> dict:
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "max_ms": round(max(ms), 1),
    }


class _Copier:
    """COPY rows into one model's table: the columns given per row, every other column its
    field's default (the database has none of Django's defaults)."""

    def __init__(self, cursor, model, given: tuple[str, ...]):
        fields = [f for f in model._meta.concrete_fields if not f.primary_key or f.attname in given]
        self.cursor = cursor
        self.table = model._meta.db_table
        self.columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        self.slots = [(f.attname in given, f.attname, self._default(f)) for f in fields]
        self.rows: list[tuple] = []

    @staticmethod
    def _default(field):
        value = field.get_default()
        return Jsonb(value) if isinstance(field, models.JSONField) else value

    def add(self, row: dict) -> None:
        self.rows.append(
            tuple(row[name] if mine else default for mine, name, default in self.slots)
        )

    def flush(self) -> int:
        with self.cursor.copy(f"COPY {self.table} ({self.columns}) FROM STDIN") as copy:
            for row in self.rows:
                copy.write_row(row)
        written, self.rows = len(self.rows), []
        return written


def _reserve_ids(cursor, model, n: int) -> list[int]:
    cursor.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
        [model._meta.db_table, n],
    )
    return [row[0] for row in cursor.fetchall()]


class _Generator:
    """Plausible histories: about half resolved by the bot, a third escalated to people, the
    rest abandoned or still open; ten messages each on average."""

    def __init__(self, rng: random.Random, *, bots: list[Bot], agents: list[int], rules: dict):
        self.rng = rng
        self.bots = bots
        self.agents = agents
        self.rules = rules  # bot id -> rule ids

    def _sizes(self, n: int) -> list[int]:
        """n message counts averaging exactly ten: 10 + d and 10 - d in pairs, shuffled."""
        sizes = []
        for _ in range(n // 2):
            d = self.rng.randint(-4, 4)
            sizes += [MESSAGES_PER_CONVERSATION + d, MESSAGES_PER_CONVERSATION - d]
        sizes += [MESSAGES_PER_CONVERSATION] * (n % 2)
        self.rng.shuffle(sizes)
        return sizes

    def write(self, copiers: dict, *, days: list, total: int, now, stamp_now: bool) -> dict:
        """`total` conversations spread over `days`, flushed day by day; the rows written."""
        rng = self.rng
        cursor = copiers["cursor"]
        written: dict[str, int] = {}
        for i, day in enumerate(days):
            per_day = total // len(days) + (i < total % len(days))
            conversation_ids = _reserve_ids(cursor, Conversation, per_day)
            customer_ids = _reserve_ids(cursor, Customer, per_day)
            start = day_start(day)
            sizes = self._sizes(per_day)
            for pk, customer_id, size in zip(conversation_ids, customer_ids, sizes, strict=True):
                at = start + timedelta(
                    hours=rng.choices(range(24), HOUR_WEIGHTS)[0], seconds=rng.randrange(3600)
                )
                if at > now - timedelta(hours=3):  # today's: over and done with by now
                    at = now - timedelta(hours=3, seconds=rng.randrange(3600 * 6))
                self._conversation(copiers, pk, customer_id, size, at, now, stamp_now)
            for name, n in _flush(copiers).items():
                written[name] = written.get(name, 0) + n
        return written

    def _conversation(self, copiers, pk, customer_id, size, at, now, stamp_now) -> None:
        rng = self.rng
        bot = rng.choice(self.bots)
        roll = rng.random()
        path = (
            "bot"
            if roll < 0.52
            else "agent"
            if roll < 0.85
            else "abandoned"
            if roll < 0.95
            else "open"
        )
        t = at
        messages, transitions, agent = [], [], None
        resolution, status, resolved_at, log = "", "ai", None, None

        def say(sender, **extra):
            nonlocal t
            t += timedelta(seconds=rng.randint(5, 90))
            messages.append({"sender": sender, "created_at": t, **extra})

        def move(from_status, to_status):
            nonlocal t
            t += timedelta(seconds=1)
            transitions.append((from_status, to_status, t))

        turns = size // 2 if path != "agent" else max(1, size // 4)
        for n in range(turns):
            say("user")
            last = n == turns - 1
            outcome = (
                "handoff"
                if path == "agent" and last
                else rng.choice(["clarified", "low_confidence"])
                if path == "abandoned" and last
                else rng.choices(["answered", "clarified", "deflected"], [8, 1, 1])[0]
            )
            feedback = rng.choices([None, 1, -1], [86, 10, 4])[0]
            intent = rng.random() < 0.2
            say(
                "ai",
                outcome=outcome,
                feedback=feedback,
                citations=Jsonb([] if intent else [{"n": 1, "title": rng.choice(TITLES)}]),
                trace=Jsonb({"intent": {"tag": f"intent-{rng.randrange(20)}", "accepted": True}})
                if intent
                else Jsonb({}),
            )
        if path == "agent":
            move("ai", "waiting")
            triggered = t
            agent = rng.choice(self.agents)
            t += timedelta(seconds=int(rng.lognormvariate(4.5, 1.0)))
            move("waiting", "active")
            while len(messages) < size:
                say("agent", agent_id=agent)
                if len(messages) < size:
                    say("user")
            move("active", "awaiting_customer")
            rules = self.rules[bot.pk]
            trigger = rng.choice(TRIGGERS)
            log = {
                "trigger": trigger,
                "rule_id": rng.choice(rules) if trigger != "human_request" else None,
                "triggered_at": triggered,
                "first_response_at": next(
                    m["created_at"] for m in messages if m["sender"] == "agent"
                ),
            }
        while len(messages) < size:
            say("user")
        if path in ("bot", "agent"):
            resolution = path
            if path == "bot":
                move("ai", "awaiting_customer")
            t += timedelta(seconds=rng.randint(30, 1800))
            move("awaiting_customer", "resolved")
            status, resolved_at = "resolved", t
            if log:
                log["resolved_at"] = t
            if t < now - timedelta(days=1):
                move("resolved", "closed")
                status = "closed"
        elif path == "abandoned":
            move("ai", "awaiting_customer")
            t += timedelta(minutes=30)
            move("awaiting_customer", "closed")
            status, resolution, resolved_at = "closed", "abandoned", t
        csat = None
        if resolution in ("bot", "agent") and rng.random() < 0.35:
            csat = rng.choices(
                [1, 2, 3, 4, 5], [1, 1, 2, 4, 6] if path == "bot" else [1, 1, 2, 3, 4]
            )[0]
        changed = now if stamp_now else max(t, at)

        copiers["customer"].add(
            {
                "id": customer_id,
                "bot_id": bot.pk,
                "visitor_id": f"bench-{customer_id}",
                "created_at": at,
                "last_seen_at": t,
            }
        )
        copiers["conversation"].add(
            {
                "id": pk,
                "bot_id": bot.pk,
                "customer_id": customer_id,
                "channel": "widget" if rng.random() < 0.8 else "api",
                "status": status,
                "assigned_agent_id": agent,
                "resolution": resolution,
                "csat": csat,
                "csat_at": resolved_at if csat else None,
                "created_at": at,
                "updated_at": changed,
                "last_message_at": messages[-1]["created_at"],
                "resolved_at": resolved_at,
                "handoff_at": log["triggered_at"] if log else None,
            }
        )
        for m in messages:
            copiers["message"].add(
                {
                    "conversation_id": pk,
                    "sender": m["sender"],
                    "agent_id": m.get("agent_id"),
                    "outcome": m.get("outcome", ""),
                    "feedback": m.get("feedback"),
                    "citations": m.get("citations", copiers["empty_list"]),
                    "trace": m.get("trace", copiers["empty_dict"]),
                    "created_at": m["created_at"],
                    "updated_at": now if stamp_now else m["created_at"],
                }
            )
        for from_status, to_status, moved in transitions:
            copiers["transition"].add(
                {
                    "conversation_id": pk,
                    "from_status": from_status,
                    "to_status": to_status,
                    "created_at": moved,
                }
            )
        if log:
            copiers["log"].add(
                {
                    "conversation_id": pk,
                    "reason": "bench",
                    "priority": "medium",
                    "queue": "tier1",
                    "resolved_at": log.get("resolved_at"),
                    **log,
                }
            )


def _copiers(cursor) -> dict:
    return {
        "cursor": cursor,
        "empty_list": Jsonb([]),
        "empty_dict": Jsonb({}),
        "customer": _Copier(
            cursor, Customer, ("id", "bot_id", "visitor_id", "created_at", "last_seen_at")
        ),
        "conversation": _Copier(
            cursor,
            Conversation,
            (
                "id",
                "bot_id",
                "customer_id",
                "channel",
                "status",
                "assigned_agent_id",
                "resolution",
                "csat",
                "csat_at",
                "created_at",
                "updated_at",
                "last_message_at",
                "resolved_at",
                "handoff_at",
            ),
        ),
        "message": _Copier(
            cursor,
            Message,
            (
                "conversation_id",
                "sender",
                "agent_id",
                "outcome",
                "feedback",
                "citations",
                "trace",
                "created_at",
                "updated_at",
            ),
        ),
        "transition": _Copier(
            cursor, Transition, ("conversation_id", "from_status", "to_status", "created_at")
        ),
        "log": _Copier(
            cursor,
            EscalationLog,
            (
                "conversation_id",
                "trigger",
                "rule_id",
                "reason",
                "priority",
                "queue",
                "triggered_at",
                "first_response_at",
                "resolved_at",
            ),
        ),
    }


def _flush(copiers: dict) -> dict:
    # Parents first: the foreign keys are checked row by row.
    order = ("customer", "conversation", "message", "transition", "log")
    return {name: copiers[name].flush() for name in order}


def bench_cast(organization) -> tuple[list, dict, list[int], Membership]:
    """The cast every generated organization gets: three bots with their rules, six agents and
    an owner (also bench_search's)."""
    bots = [
        Bot.objects.create(organization=organization, name=f"Bench {n}", slug=f"bench-{n}")
        for n in range(3)
    ]
    rules = {
        bot.pk: list(EscalationRule.objects.filter(bot=bot).values_list("id", flat=True))
        or [EscalationRule.objects.create(bot=bot, name="Refunds", trigger="keywords").pk]
        for bot in bots
    }
    agents = []
    for n in range(6):
        user = User.objects.create_user(
            username=f"{organization.slug}-{n}@bench.example",
            email=f"{organization.slug}-{n}@bench.example",
            name=f"Agent {n}",
        )
        Membership.objects.create(user=user, organization=organization, role=Role.AGENT)
        agents.append(user.pk)
    owner = Membership.objects.create(
        user=User.objects.create_user(
            username=f"{organization.slug}@bench.example",
            email=f"{organization.slug}@bench.example",
        ),
        organization=organization,
        role=Role.OWNER,
    )
    return bots, rules, agents, owner


class Command(BaseCommand):
    help = "Analytics at scale: rollup of 90 days, the dashboard's p95, one day's refresh."

    def add_arguments(self, parser):
        parser.add_argument("--conversations", type=int, default=100_000)
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument("--loads", type=int, default=50, help="dashboard loads measured")
        parser.add_argument("--seed", type=int, default=14)

    def handle(self, *args, conversations: int, days: int, loads: int, seed: int, **options):
        name = f"bench-analytics-{uuid.uuid4().hex[:8]}"
        organization = Organization.objects.create(name=name, slug=name)
        try:
            report = self._run(organization, total=conversations, days=days, loads=loads, seed=seed)
        finally:
            self._delete(organization)
        stats = report["dashboard"]
        self.stdout.write(
            f"{report['rows']['conversation']:,} conversations, {report['rows']['message']:,} "
            f"messages over {days} days, generated in {report['generate_s']} s"
        )
        self.stdout.write(
            f"full rollup: {report['full_rollup_s']} s; one day of new data "
            f"({report['new_day_rows']['conversation']:,} conversations, "
            f"{report['new_day_rows']['message']:,} messages): {report['day_rollup_s']} s"
        )
        self.stdout.write(f"dashboard(), {days}-day view, {loads} loads:")
        self.stdout.write("| p50 | p95 | max |\n|---|---|---|")
        self.stdout.write(f"| {stats['p50_ms']} ms | {stats['p95_ms']} ms | {stats['max_ms']} ms |")
        verdict = "met" if report["met"] else "NOT met"
        self.stdout.write(f"target p95 ≤ {TARGET_P95_MS} ms: {verdict}")
        self.stdout.write(json.dumps(report))

    def _run(self, organization, *, total: int, days: int, loads: int, seed: int) -> dict:
        rng = random.Random(seed)
        bots, rules, agents, owner = bench_cast(organization)
        generator = _Generator(rng, bots=bots, agents=agents, rules=rules)
        now = timezone.now()
        today = timezone.localdate()
        history = [today - timedelta(days=d) for d in range(days, 0, -1)]

        began = time.perf_counter()
        with connection.cursor() as cursor:
            rows = generator.write(
                _copiers(cursor.cursor), days=history, total=total, now=now, stamp_now=False
            )
        generated = time.perf_counter() - began
        with connection.cursor() as cursor:
            # What autovacuum does after such writes: statistics, and the BRIN summaries the
            # refresh's "what changed" reads (without them every page range is read).
            # VACUUM cannot run in a transaction (a test's): there, statistics only.
            command = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
            for model in (Customer, Conversation, Message, Transition, EscalationLog):
                cursor.execute(f"{command} {model._meta.db_table}")

        began = time.perf_counter()
        rollups_refresh(organization_id=organization.pk, full=True)
        full_rollup = time.perf_counter() - began

        # The dashboard, as the page asks for it (range=90 ends today).
        filters = filters_from(organization=organization, params={"range": str(days)})
        if filters.days != days:
            filters = filters_from(
                organization=organization,
                params={"start": history[0].isoformat(), "end": today.isoformat()},
            )
        figures = dashboard(membership=owner, filters=filters)  # warm
        ms = []
        for _ in range(loads):
            began = time.perf_counter()
            dashboard(membership=owner, filters=filters)
            ms.append((time.perf_counter() - began) * 1000)

        # One more day: written now, picked up by the next incremental refresh.
        with connection.cursor() as cursor:
            new_rows = generator.write(
                _copiers(cursor.cursor),
                days=[today],
                total=max(1, total // days),
                now=timezone.now(),
                stamp_now=True,
            )
        began = time.perf_counter()
        result = rollups_refresh(organization_id=organization.pk)
        day_rollup = time.perf_counter() - began
        stats = _stats(ms)
        return {
            "days": days,
            "rows": rows,
            "generate_s": round(generated, 1),
            "full_rollup_s": round(full_rollup, 2),
            "dashboard": stats,
            "loads": loads,
            "dashboard_conversations": figures["totals"]["conversations"],
            "new_day_rows": new_rows,
            "day_rollup_s": round(day_rollup, 3),
            "day_rollup_days": result.days,
            "met": stats["p95_ms"] <= TARGET_P95_MS,
        }

    @staticmethod
    def _delete(organization) -> None:
        """Raw deletes for the big tables: Django's cascade would load every message."""
        bots = list(Bot.objects.filter(organization=organization).values_list("id", flat=True))
        users = list(organization.memberships.values_list("user_id", flat=True))
        of_bots = "SELECT id FROM conversations_conversation WHERE bot_id = ANY(%s)"
        with transaction.atomic(), connection.cursor() as cursor:
            for table in (
                "escalation_escalationlog",
                "conversations_transition",
                "conversations_message",
                "escalation_notification",
            ):
                cursor.execute(f"DELETE FROM {table} WHERE conversation_id IN ({of_bots})", [bots])
            cursor.execute("DELETE FROM conversations_conversation WHERE bot_id = ANY(%s)", [bots])
            cursor.execute("DELETE FROM conversations_customer WHERE bot_id = ANY(%s)", [bots])
            organization.delete()  # bots, rules, memberships, rollups
            User.objects.filter(pk__in=users).delete()
