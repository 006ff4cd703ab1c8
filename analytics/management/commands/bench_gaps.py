"""The knowledge-gaps report at scale, for `make bench`.

A throw-away organization gets a bot with Acme's demo knowledge (written 60 days ago) and
`--questions` gap questions (out-of-scope answers) over the last 30 days, half as many over the
30 days before (the trend), phrased from 40 topics the demo knowledge does not cover. Then:

1. the first report: every question embedded (and stored) on the way;
2. the report again, as the analytics page asks for it, `--runs` times: p50, p95 (target:
   p95 ≤ 1 s for 3,000 questions on this 2-core machine);
3. an FAQ answering one topic is synced, and the report again: the closing check scores every
   question against the new knowledge; how many questions it closed.

Everything generated is deleted at the end, whatever happens.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from analytics import gaps
from analytics.selectors import Filters
from bots.models import Bot, Organization
from conversations.models import Conversation, Customer, Message
from knowledge.models import Document
from knowledge.services import source_upload

TARGET_P95_MS = 1000
TOPICS = [
    "gift cards",
    "shipping to Canada",
    "a student discount",
    "gift wrapping",
    "store pickup",
    "price matching",
    "paying in instalments",
    "bulk orders",
    "a loyalty programme",
    "paying with bitcoin",
    "an invoice with my VAT number",
    "shipping to a P.O. box",
    "same-day delivery",
    "a repair service",
    "spare parts",
    "recycling old devices",
    "renting instead of buying",
    "a referral bonus",
    "a business account",
    "engraving",
    "pre-orders",
    "a wish list",
    "your carbon footprint",
    "a job opening",
    "a paper catalogue",
    "shipping to Japan",
    "a military discount",
    "Apple Pay",
    "a warranty extension abroad",
    "a price drop after I bought",
    "a damaged box but fine product",
    "assembly service",
    "a showroom visit",
    "a subscription box",
    "a charity donation at checkout",
    "a gift receipt",
    "a discount code that expired",
    "buying for a school",
    "a product manual in Spanish",
    "a two-factor login by SMS",
]
PHRASINGS = [
    "Do you offer {t}?",
    "Can I get {t}?",
    "Is {t} possible?",
    "How does {t} work with you?",
    "I have a question about {t}",
    "What about {t}?",
    "Tell me about {t} please",
    "Any news on {t}?",
    "I'd like to know about {t}",
    "Help with {t}",
]
ANSWERED = "gift cards"
FAQ = (
    b"question,answer\n"
    b"Do you sell gift cards?,Yes: gift cards from 10 to 500 euros are sold on the Gift cards "
    b"page and delivered by e-mail.\n"
)


def _stats(ms: list[float]) -> dict:
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "max_ms": round(max(ms), 1),
    }


class Command(BaseCommand):
    help = "Time the knowledge-gaps report over thousands of gap questions (a throw-away org)."

    def add_arguments(self, parser):
        parser.add_argument("--questions", type=int, default=3000)
        parser.add_argument("--runs", type=int, default=10)
        parser.add_argument("--seed", type=int, default=16)
        parser.add_argument("--profile", action="store_true", help="Profile one warm report.")

    def handle(self, *args, **options):
        rng = random.Random(options["seed"])
        organization = Organization.objects.create(
            name="Gaps bench", slug=f"bench-gaps-{uuid.uuid4().hex[:8]}"
        )
        try:
            self._run(organization, rng, options["questions"], options["runs"], options["profile"])
        finally:
            organization.delete()

    def _run(self, organization, rng, n, runs, profile):
        bot = Bot.objects.create(organization=organization, name="Bench bot", slug="bench-bot")
        for name in ("acme-faq.csv", "acme-warranty.md"):
            data = (settings.BASE_DIR / "bots" / "demo" / name).read_bytes()
            source_upload(bot=bot, filename=name, data=data, sync_now=True)
        now = timezone.now()
        Document.objects.filter(bot=bot).update(updated_at=now - timedelta(days=60))
        self._questions(bot, rng, n, now, (0, 30))
        self._questions(bot, rng, n // 2, now, (30, 60))
        today = timezone.localdate()
        period = Filters(organization.pk, today - timedelta(days=29), today)

        started = time.perf_counter()
        first = gaps.report(filters=period)
        cold_ms = (time.perf_counter() - started) * 1000
        if profile:
            import cProfile
            import pstats

            with cProfile.Profile() as profiler:
                gaps.report(filters=period)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        warm = []
        for _ in range(runs):
            started = time.perf_counter()
            report = gaps.report(filters=period)
            warm.append((time.perf_counter() - started) * 1000)

        source_upload(bot=bot, filename="team.csv", data=FAQ, sync_now=True)
        started = time.perf_counter()
        after = gaps.report(filters=period)
        closing_ms = (time.perf_counter() - started) * 1000
        stats = _stats(warm)
        self.stdout.write(
            f"questions: {n} in the period, {n // 2} in the previous one; "
            f"{len(first.gaps)} groups (threshold {first.thresholds[bot.pk]})\n"
            f"first report (embeds every question): {cold_ms:.0f} ms\n"
            f"report, {runs} runs: p50 {stats['p50_ms']} ms, p95 {stats['p95_ms']} ms "
            f"(target p95 ≤ {TARGET_P95_MS} ms), max {stats['max_ms']} ms\n"
            f"after an FAQ on {ANSWERED}: {closing_ms:.0f} ms, {after.answered} questions "
            f"closed, {len(after.gaps)} groups left (was {len(report.gaps)})"
        )

    def _questions(self, bot, rng, n, now, days):
        customers = Customer.objects.bulk_create(
            Customer(bot=bot, visitor_id=f"bench-{uuid.uuid4().hex}") for _ in range(n)
        )
        conversations = Conversation.objects.bulk_create(
            Conversation(bot=bot, customer=c, channel="widget") for c in customers
        )
        questions, times = [], []
        for c in conversations:
            text = rng.choice(PHRASINGS).format(t=rng.choice(TOPICS))
            if rng.random() < 0.5:
                text += f" (order {rng.randint(10000, 99999)})"
            at = now - timedelta(seconds=rng.uniform(days[0] * 86400 + 60, days[1] * 86400 - 60))
            questions.append(Message(conversation=c, sender="user", text=text))
            times.append(at)
        questions = Message.objects.bulk_create(questions)
        answers = Message.objects.bulk_create(
            Message(
                conversation_id=q.conversation_id,
                sender="ai",
                text="Sorry, I don't have information about that.",
                outcome="handoff_proposed",
                trace={"category": "out_of_scope"},
                reply_to=q,
            )
            for q in questions
        )
        # auto_now_add stamped "now": put every message back at its question's time.
        for q, a, at in zip(questions, answers, times, strict=True):
            q.created_at, a.created_at = at, at + timedelta(seconds=1)
        Message.objects.bulk_update(questions + answers, ["created_at"], batch_size=1000)
