"""Escalation latency for `make bench`: from a customer asking for a person to the agent
console's queue showing them.

A real daphne process serves the real ASGI app on the development database (the one
`bench_chat` starts). A throw-away organization gets a bot and a member; the member's console
socket (`ws/o/<org>/console/`, signed in through a session cookie, from the server's own
origin) listens as an open console does. N widget sockets say hello, and each sends
`{"type": "escalate"}` at a random moment within --over seconds. Latency = from sending
`escalate` to the first queue partial pushed to the console (`<section id="queue">`) that lists
that conversation. Everything in between is the product: the rules, the handoff's row lock, the
transition, the system message, the log, the commit, the queue's render, the broadcast and the
consumer's relay.

The organization, its bot and conversations, the member and their session are deleted at the
end, whatever happens.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
import uuid
from importlib import import_module

import numpy as np
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.core.management.base import BaseCommand, CommandError

from bots.models import Bot, Membership, Organization, Role, User
from chat.management.commands.bench_chat import _free_port, _start_server

ORIGIN = "http://shop.bench.example"
TARGET_P95_MS = 500
# The queue partial the console swaps in, and the conversations it lists.
_QUEUE = re.compile(r'<section id="queue".*?</section>', re.S)
_LISTED = re.compile(r'data-conversation-id="(\d+)"')


def _stats(ms: list[float]) -> dict:
    if not ms:
        return {"p50_ms": None, "p95_ms": None, "max_ms": None}
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "max_ms": round(max(ms), 1),
    }


def frame_conversation_ids(frame: str) -> set[int]:
    """The conversations waiting in a queue partial pushed to the console; nothing for any
    other frame (a transcript message, typing, JSON)."""
    queue = _QUEUE.search(frame)
    return {int(pk) for pk in _LISTED.findall(queue.group(0))} if queue else set()


class _Bench:
    """A throw-away organization with a bot and a signed-in member."""

    def __init__(self):
        name = f"bench-escalation-{uuid.uuid4().hex[:8]}"
        self.organization = Organization.objects.create(name=name, slug=name)
        self.bot = Bot.objects.create(
            organization=self.organization, name=name, slug=name, allowed_origins=[ORIGIN]
        )
        self.user = User.objects.create_user(
            username=f"{name}@bench.example", email=f"{name}@bench.example"
        )
        Membership.objects.create(user=self.user, organization=self.organization, role=Role.AGENT)
        self.session = import_module(settings.SESSION_ENGINE).SessionStore()
        self.session[SESSION_KEY] = str(self.user.pk)
        self.session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        self.session[HASH_SESSION_KEY] = self.user.get_session_auth_hash()
        self.session.save()

    @property
    def cookie(self) -> str:
        return f"{settings.SESSION_COOKIE_NAME}={self.session.session_key}"

    def delete(self) -> None:
        self.session.delete()
        self.organization.delete()  # its bot, customers, conversations and memberships
        self.user.delete()


class _Console:
    """The member's socket: every frame's arrival time, matched to the escalations awaited."""

    def __init__(self):
        self.sent: dict[int, float] = {}  # conversation id -> when `escalate` was sent
        self.seen: dict[int, float] = {}  # conversation id -> its first frame on the console
        self.latency: dict[int, float] = {}
        self.arrived: dict[int, asyncio.Event] = {}
        self.last_frame = time.perf_counter()

    def expect(self, conversation_id: int, sent: float) -> asyncio.Event:
        """The escalation `sent` then started this conversation: the widget learns its id
        with the handoff, so the console may have listed it already."""
        self.sent[conversation_id] = sent
        event = self.arrived.setdefault(conversation_id, asyncio.Event())
        if conversation_id in self.seen:
            self._arrived(conversation_id, self.seen[conversation_id])
        return event

    def _arrived(self, conversation_id: int, now: float) -> None:
        sent = self.sent.get(conversation_id)
        if sent is not None and conversation_id not in self.latency:
            self.latency[conversation_id] = (now - sent) * 1000
            self.arrived[conversation_id].set()

    async def listen(self, ws) -> None:
        async for frame in ws:
            now = time.perf_counter()
            self.last_frame = now
            if isinstance(frame, bytes):
                continue
            for conversation_id in frame_conversation_ids(frame):
                self.seen.setdefault(conversation_id, now)
                self._arrived(conversation_id, now)


async def _widget(url, start_at, console, results, connected, go):
    import websockets

    record = {"latency_ms": None, "error": None}
    results.append(record)
    try:
        async with websockets.connect(
            url, origin=ORIGIN, open_timeout=60, max_size=2**20, ping_interval=None
        ) as ws:
            await ws.send(json.dumps({"type": "hello", "visitor_id": uuid.uuid4().hex}))
            while True:
                ready = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
                if ready.get("type") == "ready":
                    break
            connected.append(1)
            await go.wait()
            await asyncio.sleep(start_at)
            sent = time.perf_counter()
            # The visitor's first action starts the conversation: the widget learns its id
            # with the handoff.
            await ws.send(json.dumps({"type": "escalate"}))
            conversation_id = await asyncio.wait_for(_customer_told(ws), timeout=30)
            arrived = console.expect(conversation_id, sent)
            try:
                await asyncio.wait_for(arrived.wait(), timeout=30)
            except TimeoutError:
                record["error"] = "no frame about the conversation on the console in 30 s"
            record["latency_ms"] = console.latency.get(conversation_id)
    except Exception as exc:  # counted and reported, never hidden
        record["error"] = f"{type(exc).__name__}: {exc}"


async def _customer_told(ws) -> int:
    """Until the widget hears that its conversation waits for a person: its id."""
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("type") == "error":
            raise RuntimeError(frame.get("message"))
        conversation = frame.get("conversation") or {}
        if frame.get("type") == "conversation.updated" and conversation.get("status") == "waiting":
            return int(conversation["id"])


async def _run(port: int, bench: _Bench, count: int, over: float) -> dict:
    import websockets

    base = f"ws://127.0.0.1:{port}"
    widget_url = f"{base}/ws/widget/{bench.bot.public_key}/"
    console = _Console()
    try:
        member = await websockets.connect(
            f"{base}/ws/o/{bench.organization.slug}/console/",
            origin=f"http://127.0.0.1:{port}",
            additional_headers={"Cookie": bench.cookie},
            open_timeout=30,
            max_size=2**22,
            ping_interval=None,
        )
    except websockets.InvalidStatus as exc:
        raise CommandError(
            f"The member's socket was refused ({exc}): members' sockets only accept this "
            "server's own origin, and 127.0.0.1 must be in ALLOWED_HOSTS for the bench."
        ) from None
    async with member:
        listener = asyncio.create_task(console.listen(member))
        # One escalation first, untimed: the server is measured warm, as it serves all day.
        ready = asyncio.Event()
        ready.set()
        await _widget(widget_url, 0, console, [], [], ready)

        results: list[dict] = []
        connected: list[int] = []
        go = asyncio.Event()
        pick = random.Random(1)
        tasks = [
            asyncio.create_task(
                _widget(widget_url, pick.uniform(0, over), console, results, connected, go)
            )
            for _ in range(count)
        ]
        deadline = time.monotonic() + 120
        while len(connected) < count and time.monotonic() < deadline:
            if all(t.done() for t in tasks):
                break
            await asyncio.sleep(0.2)
        # The hellos' own pushes (conversation.created) settle before the clock starts, so none
        # is mistaken for an escalation's.
        settle = time.monotonic() + 10
        while time.perf_counter() - console.last_frame < 1.0 and time.monotonic() < settle:
            await asyncio.sleep(0.1)
        go.set()
        await asyncio.gather(*tasks)
        listener.cancel()
    latencies = [r["latency_ms"] for r in results if r["latency_ms"] is not None]
    errors = [r["error"] for r in results if r["error"]]
    stats = _stats(latencies)
    return {
        "escalations": count,
        "over_s": over,
        "widgets_open": len(connected),
        "measured": len(latencies),
        "errors": len(errors),
        "first_errors": sorted(set(errors))[:3],
        "escalate_to_console": stats,
        "target_p95_ms": TARGET_P95_MS,
        "met": stats["p95_ms"] is not None and stats["p95_ms"] <= TARGET_P95_MS and not errors,
    }


class Command(BaseCommand):
    help = "Latency from a widget's escalate to the console's queue update, on a live server."

    def add_arguments(self, parser):
        parser.add_argument("--escalations", type=int, default=200)
        parser.add_argument(
            "--over", type=float, default=60.0, help="seconds over which widgets escalate"
        )

    def handle(self, *args, escalations: int, over: float, **options):
        bench = _Bench()
        try:
            port = _free_port()
            # No embedding model in this server: a request for a person needs none, and its
            # load (torch and MiniLM, started by the first widget connection) took 60% of the
            # server's CPU inside the measured minute (py-spy). A served instance loaded it long
            # before; bench_recovery measures that load after a restart.
            server = _start_server(port, EMBEDDING_PRELOAD="0")
            try:
                report = asyncio.run(_run(port, bench, escalations, over))
            finally:
                server.terminate()
                server.wait(timeout=30)
        finally:
            bench.delete()
        stats = report["escalate_to_console"]
        self.stdout.write(
            f"escalate → console queue update: {report['measured']} of {escalations} measured "
            f"over {over:g} s, {report['errors']} errors"
        )
        self.stdout.write("| p50 | p95 | max |\n|---|---|---|")
        self.stdout.write(f"| {stats['p50_ms']} ms | {stats['p95_ms']} ms | {stats['max_ms']} ms |")
        verdict = "met" if report["met"] else "NOT met"
        self.stdout.write(f"target p95 ≤ {TARGET_P95_MS} ms: {verdict}")
        self.stdout.write(json.dumps(report))
