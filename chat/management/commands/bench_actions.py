"""Handoff's own time in an action turn, for `make bench`: a full offline turn that answers
"Where's my order 1234?" from the business's API, minus the time the business's endpoint took.

A throw-away organization gets Acme's demo knowledge (its order_status intent) and the demo's
`lookup_order` action, pointed at a stand-in for the business's API in this process (an HTTP
server on 127.0.0.1 that answers at once; private networks are allowed for this process only,
as the action tests do). A verified customer asks the question in --turns fresh conversations,
each through the chat runner as the widget's socket runs it: the customer's message stored,
the escalation rules, the pipeline (classify, retrieve, the intent, the action's schema,
verification, signing, the guarded HTTP call, the result template, the guardrails), the
ActionCall rows, the completed answer and its pushes. Own time = the turn's wall time minus the
endpoint's time as action_run measured it (from the request's start to its last byte).

The first turns are not measured (the embedding model and the intent model load once per
process). The organization and everything in it are deleted at the end, whatever happens.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from bots.models import Bot, Organization
from chat import runner
from config.management.commands.seed_demo import demo_actions
from conversations import services
from conversations.models import ActionCall, Conversation, Customer
from knowledge.services import source_upload

TARGET_P95_MS = 30
WARM_UP = 5
QUESTION = "Where's my order 1234?"
DEMO = Path(settings.BASE_DIR) / "bots" / "demo"
ORDER = {"id": "1234", "status": "shipped", "eta": "Tuesday", "items": ["Trail running shoes"]}


def _stats(ms: list[float]) -> dict:
    if not ms:
        return {"p50_ms": None, "p95_ms": None, "max_ms": None}
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "max_ms": round(max(ms), 1),
    }


def _business() -> ThreadingHTTPServer:
    """The business's order API, answering every order lookup at once."""
    body = json.dumps(ORDER).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Command(BaseCommand):
    help = "Handoff's own time in an offline action turn (the endpoint's time excluded)."

    def add_arguments(self, parser):
        parser.add_argument("--turns", type=int, default=200)

    def handle(self, *args, turns: int, **options):
        if turns < 1:
            raise CommandError("--turns is at least 1.")
        settings.ACTIONS_ALLOW_PRIVATE_NETWORKS = True  # the stand-in business is local
        business = _business()
        slug = f"bench-actions-{uuid.uuid4().hex[:8]}"
        organization = Organization.objects.create(name="Bench actions", slug=slug)
        try:
            bot = Bot.objects.create(organization=organization, name="Bench shop", slug="shop")
            for name in ("acme-faq.csv", "acme-intents.json"):
                source_upload(
                    bot=bot, filename=name, data=(DEMO / name).read_bytes(), sync_now=True
                )
            fields = demo_actions(f"http://127.0.0.1:{business.server_port}")["lookup_order"]
            bot.actions.create(name="lookup_order", **fields)
            customer = Customer.objects.create(bot=bot, external_id="bench-customer")
            own, endpoint, retrieve, action_own, wrong = [], [], [], [], []
            for n in range(WARM_UP + turns):
                conversation = Conversation.objects.create(bot=bot, customer=customer)
                started = time.perf_counter()
                message, _ = services.message_add_user(conversation=conversation, text=QUESTION)
                for _event in runner.turn_run(message=message):
                    pass
                total = (time.perf_counter() - started) * 1000
                call = ActionCall.objects.filter(conversation=conversation).first()
                if call is None or call.outcome != "ok":
                    wrong.append(call.record if call is not None else "no action call")
                    continue
                if n >= WARM_UP:
                    spent = float(call.record.get("endpoint_ms") or 0.0)
                    own.append(total - spent)
                    endpoint.append(spent)
                    action_own.append(float(call.record.get("own_ms") or 0.0))
                    timings = call.message.trace.get("timings_ms") or {}
                    retrieve.append(float(timings.get("retrieve") or 0.0))
        finally:
            organization.delete()
            business.shutdown()
            business.server_close()
        stats = _stats(own)
        report = {
            "turns": turns,
            "measured": len(own),
            "not_answered_by_the_action": len(wrong),
            "first_wrong": [str(w)[:200] for w in wrong[:3]],
            "own": stats,
            "endpoint": _stats(endpoint),
            # Where the own time goes: the query's embedding and the search (the retrieve
            # step, MiniLM on this CPU), and action_run's own checks, signing and template.
            "retrieve_step": _stats(retrieve),
            "action_run_own": _stats(action_own),
            "target_p95_ms": TARGET_P95_MS,
            "met": stats["p95_ms"] is not None and stats["p95_ms"] <= TARGET_P95_MS and not wrong,
        }
        self.stdout.write(
            f"offline action turn ({QUESTION!r}), Handoff's own time without the endpoint's: "
            f"{len(own)} of {turns} measured, {len(wrong)} not answered by the action"
        )
        self.stdout.write("| p50 | p95 | max |\n|---|---|---|")
        self.stdout.write(f"| {stats['p50_ms']} ms | {stats['p95_ms']} ms | {stats['max_ms']} ms |")
        for label, key in (
            ("embedding + search", "retrieve_step"),
            ("action_run", "action_run_own"),
        ):
            part = report[key]
            self.stdout.write(
                f"  of which {label}: p50 {part['p50_ms']} ms, p95 {part['p95_ms']} ms"
            )
        verdict = "met" if report["met"] else "NOT met"
        self.stdout.write(f"target p95 ≤ {TARGET_P95_MS} ms: {verdict}")
        self.stdout.write(json.dumps(report))
