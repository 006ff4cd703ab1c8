"""Conversation history search at scale, for `make bench`.

A throw-away organization gets 100,000 conversations and 1,000,000 messages over 90 days
(bench_analytics' generator, with generated support-chat text in every message), written with
COPY into the real tables, so the full-text index (`message_search`) is maintained as in
production. Then the history's first page (`/o/<org>/conversations/`, the owner's request
through the Django test client: membership, filters, the query, the rendered page) is loaded
for several kinds of query, `--loads` times each, and its p50 / p95 / max reported:

- a common word (in about one message in five), a rare word (in 33 messages), a phrase,
- a word with filters (outcome, escalated, the last 30 days), filters without words,
- page 2 of the common word through the keyset cursor.

Target: p95 ≤ 200 ms for every kind. Everything generated is deleted at the end, whatever
happens. `--conversations` scales it down (tests run it with a few hundred).
"""

from __future__ import annotations

import html
import json
import os
import random
import re
import time
import uuid
from datetime import timedelta
from urllib.parse import parse_qs

import numpy as np
from django.core.management.base import BaseCommand
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from analytics.management.commands import bench_analytics
from bots.models import Organization
from conversations.models import Conversation, Customer, Message, Transition
from escalation.models import EscalationLog

TARGET_P95_MS = 200
RARE_WORD = "quokka"
# How many messages carry the rare word, whatever the size (33 of the million).
RARE_MESSAGES = 33
PRODUCTS = [
    "kettle", "toaster", "blender", "headphones", "backpack", "jacket", "lamp", "printer",
    "router", "monitor", "keyboard", "charger", "sofa", "mattress", "bicycle", "helmet",
    "camera", "tripod", "watch", "speaker", "drill", "vacuum", "heater", "fridge",
]  # fmt: skip
COUNTRIES = ["Norway", "Spain", "Canada", "Japan", "Brazil", "Kenya", "Poland", "Chile"]
CUSTOMER = [
    "Where is my order {code}? It has been a week.",
    "I want a refund for the {product}, it arrived broken.",
    "How do I reset my password?",
    "Can I change the delivery address of order {code}?",
    "Do you ship to {country}?",
    "The tracking number for {code} does not work.",
    "My {product} stopped working after two days.",
    "I was charged twice for order {code}.",
    "Can I cancel my subscription?",
    "Is the {product} in stock again?",
    "I need an invoice for my company.",
    "Thanks, that helped!",
    "That does not answer my question.",
    "Can I talk to a person please?",
    "How long does the warranty on the {product} last?",
]
BOT = [
    "Standard shipping takes 3 to 5 business days; you can follow order {code} with the "
    "tracking number in your confirmation e-mail.",
    "You can return the {product} within 30 days for a full refund.",
    "To reset your password, use the link on the sign-in page.",
    "We ship to {country} with express delivery in about a week.",
    "Your subscription can be cancelled any time from your account settings.",
    "The warranty on the {product} lasts two years from the delivery date.",
    "Could you tell me a little more about what happened?",
    "I'm not sure I understood: is this about an order or your account?",
]
AGENT = [
    "Hi, I'm looking into order {code} for you now.",
    "I've issued the refund for the {product}; it shows up in 3 to 5 days.",
    "Sorry about the double charge, I've reversed it.",
    "I've updated the delivery address for order {code}.",
    "The courier confirms the {product} is on its way.",
]
KINDS = [
    ("common word", {"q": "order"}),
    ("rare word", {"q": RARE_WORD}),
    ("phrase", {"q": '"tracking number"'}),
    ("word + filters", {"q": "refund", "outcome": "agent", "escalated": "yes", "start": None}),
    ("filters, no words", {"outcome": "abandoned", "channel": "api"}),
    ("common word, page 2", {"q": "order", "after": None}),
]


class _Texts:
    def __init__(self, rng: random.Random, *, messages: int):
        self.rng = rng
        self.n = 0
        self.rare_every = max(1, messages // RARE_MESSAGES)

    def __call__(self, sender: str) -> str:
        rng = self.rng
        self.n += 1
        templates = CUSTOMER if sender == "user" else BOT if sender == "ai" else AGENT
        text = rng.choice(templates).format(
            code=f"A{rng.randrange(10**6):06d}",
            product=rng.choice(PRODUCTS),
            country=rng.choice(COUNTRIES),
        )
        if self.n % self.rare_every == 0:
            text += f" My {RARE_WORD} sticker is missing."
        return text


class _TextCopier(bench_analytics._Copier):
    """bench_analytics' message copier, with text in every message."""

    def __init__(self, cursor, given: tuple[str, ...], texts: _Texts):
        super().__init__(cursor, Message, (*given, "text"))
        self.texts = texts

    def add(self, row: dict) -> None:
        super().add({**row, "text": self.texts(row["sender"])})


def _copiers(cursor, texts: _Texts) -> dict:
    copiers = bench_analytics._copiers(cursor)
    given = tuple(name for mine, name, _default in copiers["message"].slots if mine)
    copiers["message"] = _TextCopier(cursor, given, texts)
    return copiers


class Command(BaseCommand):
    help = "History search at scale: the first page's p95 for several kinds of query."

    def add_arguments(self, parser):
        parser.add_argument("--conversations", type=int, default=100_000)
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument("--loads", type=int, default=30, help="page loads per kind")
        parser.add_argument("--seed", type=int, default=16)
        parser.add_argument(
            "--explain", action="store_true", help="print each kind's query plan (EXPLAIN ANALYZE)"
        )

    def handle(self, *args, conversations: int, days: int, loads: int, seed: int, **options):
        self.explain = options.get("explain", False)
        name = f"bench-search-{uuid.uuid4().hex[:8]}"
        organization = Organization.objects.create(name=name, slug=name)
        try:
            report = self._run(organization, total=conversations, days=days, loads=loads, seed=seed)
        finally:
            bench_analytics.Command._delete(organization)
        self.stdout.write(
            f"{report['rows']['conversation']:,} conversations, {report['rows']['message']:,} "
            f"messages over {days} days, generated (with the search index) in "
            f"{report['generate_s']} s; {report['rare_messages']} messages hold the rare word"
        )
        self.stdout.write(
            f"history first page, {loads} loads each (server time, rendered); load average "
            f"{report['load'][0]} before, {report['load'][1]} after on {os.cpu_count()} cores:"
        )
        self.stdout.write("| query | rows | p50 | p95 | max |\n|---|---|---|---|---|")
        for kind, stats in report["kinds"].items():
            self.stdout.write(
                f"| {kind} | {stats['rows']} | {stats['p50_ms']} ms | {stats['p95_ms']} ms "
                f"| {stats['max_ms']} ms |"
            )
        verdict = "met" if report["met"] else "NOT met"
        self.stdout.write(f"target p95 ≤ {TARGET_P95_MS} ms for every kind: {verdict}")
        self.stdout.write(json.dumps(report))

    def _run(self, organization, *, total: int, days: int, loads: int, seed: int) -> dict:
        rng = random.Random(seed)
        bots, rules, agents, owner = bench_analytics.bench_cast(organization)
        generator = bench_analytics._Generator(rng, bots=bots, agents=agents, rules=rules)
        now = timezone.now()
        today = timezone.localdate()
        history = [today - timedelta(days=d) for d in range(days, 0, -1)]
        expected = total * bench_analytics.MESSAGES_PER_CONVERSATION
        texts = _Texts(random.Random(seed + 1), messages=expected)

        began = time.perf_counter()
        with connection.cursor() as cursor:
            rows = generator.write(
                _copiers(cursor.cursor, texts), days=history, total=total, now=now, stamp_now=False
            )
        generated = time.perf_counter() - began
        with connection.cursor() as cursor:
            # What autovacuum does after such writes: the planner's statistics.
            command = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
            for model in (Customer, Conversation, Message, Transition, EscalationLog):
                cursor.execute(f"{command} {model._meta.db_table}")

        client = Client(HTTP_HOST="localhost")
        client.force_login(owner.user)
        url = reverse("history", args=[organization.slug])
        kinds, runs = {}, []
        for kind, params in KINDS:
            params = dict(params)
            if "start" in params:
                params["start"] = (today - timedelta(days=30)).isoformat()
            if "after" in params:
                first = client.get(url, {k: v for k, v in params.items() if k != "after"})
                older = re.search(r'href="\?([^"]+)" rel="next"', first.content.decode())
                params["after"] = parse_qs(html.unescape(older.group(1)))["after"][0]
            runs.append((kind, params))
        # Warm: the rows just written are not all in memory yet, as they would be on a server
        # people search every day; otherwise the first kind measured pays for it.
        for _kind, params in runs * 3:
            client.get(url, params)
        load_before = os.getloadavg()[0]
        for kind, params in runs:
            kinds[kind] = self._measure(client, url, params, loads)
            if self.explain:
                self.stdout.write(f"--- {kind}: {params}\n{self._plan(client, url, params)}")
        rare = Message.objects.filter(
            conversation__bot__organization=organization, text__contains=RARE_WORD
        ).count()
        return {
            "days": days,
            "rows": rows,
            "generate_s": round(generated, 1),
            "rare_messages": rare,
            "loads": loads,
            "kinds": kinds,
            # The machine's 1-minute load average before and after the measurement.
            "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "met": all(s["p95_ms"] <= TARGET_P95_MS for s in kinds.values()),
        }

    @staticmethod
    def _plan(client, url, params) -> str:
        """The plan of the page's list query, as PostgreSQL ran it."""
        with CaptureQueriesContext(connection) as queries:
            began = time.perf_counter()
            client.get(url, params)
            total_ms = (time.perf_counter() - began) * 1000
        sql_ms = sum(float(q["time"]) for q in queries) * 1000
        plans = [f"{len(queries)} queries, {sql_ms:.1f} ms of the page's {total_ms:.1f} ms"]
        with connection.cursor() as cursor:
            for query in queries:
                if "conversations_conversation" in query["sql"] and "SELECT" in query["sql"]:
                    cursor.execute(f"EXPLAIN ANALYZE {query['sql']}")
                    plans.append("\n".join(row[0] for row in cursor.fetchall()))
        return "\n\n".join(plans)

    @staticmethod
    def _measure(client, url, params, loads) -> dict:
        response = client.get(url, params)  # warm
        if response.status_code != 200:
            raise RuntimeError(f"{params}: {response.status_code} {response.content[:300]!r}")
        ms = []
        for _ in range(loads):
            began = time.perf_counter()
            response = client.get(url, params)
            ms.append((time.perf_counter() - began) * 1000)
        return {
            "rows": response.content.decode().count("data-conversation-id="),
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "max_ms": round(max(ms), 1),
        }
