"""Chat speed figures for `make bench`: the answering pipeline over 10,000 chunks, and many
widget sockets on one server process.

1. Pipeline: a throw-away bot with the demo knowledge plus synthetic articles up to 10,000
   chunks (real MiniLM vectors of support sentences, as `bench_latency` builds them). Each turn
   runs the real pipeline, offline (extractive answers): the time to its first token and to its
   final event, p50/p95.
2. Sockets: a real daphne process serving the real ASGI app; N sockets connect from another
   process (this one), say hello, and each sends one question from the demo knowledge at a random
   moment within --spread seconds. Round trip = from sending the frame to receiving the bot's
   completed answer. Everything in between is the product: origin check, rate limits (raised
   here, since all sockets share one IP), saving, the pipeline in a worker thread, the push.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand

from conversations.pipeline import Turn, run
from knowledge.evaluation import throwaway_bot
from knowledge.management.commands.bench_latency import synthetic_fill
from knowledge.models import Chunk
from knowledge.services import chunks_analyze, source_upload

DEMO = Path(settings.BASE_DIR) / "bots" / "demo"
ORIGIN = "http://shop.bench.example"
# Questions the demo knowledge answers, phrased as customers do.
QUESTIONS = [
    "How long does shipping take?",
    "how much is shipping",
    "Can I return something I bought?",
    "When do I get my refund?",
    "How do I track my order?",
    "can I change the delivery address",
    "What does the warranty cover?",
    "what are your opening hours",
    "where is my order",
    "Do you ship abroad?",
]


def _percentiles(ms: list[float]) -> dict:
    if not ms:
        return {"p50_ms": None, "p95_ms": None}
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
    }


def _load_demo(bot) -> None:
    for path in sorted(DEMO.iterdir()):
        source_upload(bot=bot, filename=path.name, data=path.read_bytes(), sync_now=True)


def _fill(bot, total: int) -> int:
    """Synthetic articles (five passages and a title each) until the bot holds `total` chunks."""
    have = Chunk.objects.filter(bot=bot).count()
    passages = max(0, total - have) * 5 // 6
    if passages:
        synthetic_fill(
            bot,
            passages=passages,
            titles=True,
            suffix=". See the details in your account settings.",
        )
        chunks_analyze()
    return Chunk.objects.filter(bot=bot).count()


def bench_pipeline(bot, turns: int) -> dict:
    # The first answerable turn after a sync calibrates the bot's relevance gate (cached per
    # process and knowledge version): reported on its own, then the steady state is measured.
    started = time.perf_counter()
    list(run(Turn(bot=bot, text="Is shipping free on big orders?", history=[])))
    report = {"first_turn_ms": round((time.perf_counter() - started) * 1000)}
    first, full, outcomes = [], [], {}
    for i in range(turns):
        started = time.perf_counter()
        seen_token = False
        for event in run(Turn(bot=bot, text=QUESTIONS[i % len(QUESTIONS)], history=[])):
            if event["type"] == "token" and not seen_token:
                seen_token = True
                first.append((time.perf_counter() - started) * 1000)
            elif event["type"] == "final":
                outcomes[event["outcome"]] = outcomes.get(event["outcome"], 0) + 1
        full.append((time.perf_counter() - started) * 1000)
    report["first_token"] = _percentiles(first)
    report["full_answer"] = _percentiles(full)
    report["outcomes"] = outcomes
    return report


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port: int, **env_overrides: str) -> subprocess.Popen:
    env = {
        **os.environ,
        # Every bench socket comes from 127.0.0.1: the per-IP limits (frames, and new
        # conversations an hour) would stop the test, not measure the server. Per-visitor and
        # per-socket limits stay as configured.
        "CHAT_RATE_PER_IP": "1000000",
        "CHAT_CONVERSATIONS_PER_IP_HOUR": "1000000",
        "LOG_LEVEL": "WARNING",
        **env_overrides,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-v",
            "0",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "config.asgi:application",
        ],
        cwd=settings.BASE_DIR,
        env=env,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process
        except Exception:
            if process.poll() is not None:
                raise RuntimeError("the bench server exited during start-up") from None
            time.sleep(0.5)
    process.terminate()
    raise RuntimeError("the bench server did not answer /healthz within 90 s")


async def _socket_session(url, start_at, question, results, connected, go):
    import websockets

    record = {"connect_ms": None, "round_trip_ms": None, "error": None}
    results.append(record)
    try:
        t0 = time.perf_counter()
        async with websockets.connect(
            url, origin=ORIGIN, open_timeout=60, max_size=2**20, ping_interval=None
        ) as ws:
            await ws.send(json.dumps({"type": "hello", "visitor_id": uuid.uuid4().hex}))
            while json.loads(await ws.recv()).get("type") != "ready":
                pass
            record["connect_ms"] = (time.perf_counter() - t0) * 1000
            connected.append(1)
            await go.wait()
            await asyncio.sleep(start_at)
            client_id = uuid.uuid4().hex
            sent = time.perf_counter()
            await ws.send(
                json.dumps({"type": "message", "client_message_id": client_id, "text": question})
            )
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=120))
                if frame.get("type") == "error":
                    raise RuntimeError(frame.get("message"))
                message = frame.get("message") or {}
                if (
                    frame.get("type") == "message.updated"
                    and message.get("sender") == "ai"
                    and message.get("state") in {"complete", "failed"}
                ):
                    record["round_trip_ms"] = (time.perf_counter() - sent) * 1000
                    if message["state"] == "failed":
                        record["error"] = "answer failed"
                    return
    except Exception as exc:  # counted and reported, never hidden
        record["error"] = f"{type(exc).__name__}: {exc}"


async def _sockets(url: str, count: int, spread: float) -> dict:
    # One answer first, untimed: the server is measured warm, as it serves all day.
    warm: list[dict] = []
    ready = asyncio.Event()
    ready.set()
    await _socket_session(url, 0, QUESTIONS[0], warm, [], ready)
    pick = random.Random(1)
    results: list[dict] = []
    connected: list[int] = []
    go = asyncio.Event()
    tasks = [
        asyncio.create_task(
            _socket_session(
                url, pick.uniform(0, spread), QUESTIONS[i % len(QUESTIONS)], results, connected, go
            )
        )
        for i in range(count)
    ]
    deadline = time.monotonic() + 120
    while len(connected) < count and time.monotonic() < deadline:
        if all(t.done() for t in tasks):
            break
        await asyncio.sleep(0.2)
    open_sockets = len(connected)
    go.set()
    await asyncio.gather(*tasks)
    errors = [r["error"] for r in results if r["error"]]
    return {
        "sockets": count,
        "open_at_once": open_sockets,
        "spread_s": spread,
        "answered": sum(1 for r in results if r["round_trip_ms"] is not None and not r["error"]),
        "errors": len(errors),
        "first_errors": sorted(set(errors))[:3],
        "connect": _percentiles([r["connect_ms"] for r in results if r["connect_ms"] is not None]),
        "round_trip": _percentiles(
            [r["round_trip_ms"] for r in results if r["round_trip_ms"] is not None]
        ),
    }


class Command(BaseCommand):
    help = "Pipeline latency over 10,000 chunks, and N concurrent widget sockets on one process."

    def add_arguments(self, parser):
        parser.add_argument("--chunks", type=int, default=10_000)
        parser.add_argument("--turns", type=int, default=200)
        parser.add_argument("--sockets", type=int, default=500)
        parser.add_argument(
            "--spread", type=float, default=60.0, help="seconds over which sockets send"
        )

    def handle(self, *args, chunks: int, turns: int, sockets: int, spread: float, **options):
        report: dict = {}
        with throwaway_bot() as bot:
            _load_demo(bot)
            bot.allowed_origins = [ORIGIN]
            bot.save(update_fields=["allowed_origins"])
            report["chunks"] = _fill(bot, chunks)
            report["pipeline"] = bench_pipeline(bot, turns)
            self.stdout.write(f"pipeline: {json.dumps(report['pipeline'])}")
            if sockets:
                port = _free_port()
                server = _start_server(port)
                try:
                    url = f"ws://127.0.0.1:{port}/ws/widget/{bot.public_key}/"
                    report["sockets"] = asyncio.run(_sockets(url, sockets, spread))
                finally:
                    server.terminate()
                    server.wait(timeout=30)
                self.stdout.write(f"sockets: {json.dumps(report['sockets'])}")
        self.stdout.write(json.dumps(report))
