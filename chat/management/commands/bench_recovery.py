"""Recovery figures for `make bench`: real processes killed mid-answer and mid-sync.

1. Answers: `manage.py serve` (web + worker) with answers slowed by the fault-injection hook
   CHAT_FAULT_ANSWER_DELAY_SECONDS (the first attempt of an answer waits, heartbeat beating);
   a widget socket asks a question, and once the bot's answer is saved as pending, web and
   worker are SIGKILLed and serve is started again. The customer's widget reconnects and waits
   for the answer. Time to recover = from the restarted server answering /healthz to the
   completed answer reaching the widget.
2. Syncs: a knowledge source of many articles syncing in the worker of `serve`; once some of it
   is embedded, web and worker are SIGKILLed and serve is started again. Time to recover = from
   the restarted server answering /healthz to the source being ready with every chunk, once.
   Meanwhile the previous version must keep serving.

Each trial reports answered (or synced), duplicated, and the seconds; the summary gives p50 and
max. The figures depend on the machine (a shared one gives slower, noisier ones).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.utils import timezone

from chat.management.commands.bench_chat import QUESTIONS, _load_demo
from conversations.models import Message
from knowledge.evaluation import throwaway_bot
from knowledge.models import Chunk, Document, EmbeddingCache, KnowledgeSource
from knowledge.services import source_upload

ORIGIN = "http://shop.recovery.example"
# Long enough to kill the server mid-answer with room to spare; the retry does not wait.
ANSWER_DELAY_SECONDS = 60


def database_url() -> str:
    """This process's database, for the servers it starts (the test database under pytest)."""
    params = connection.get_connection_params()
    host = params.get("host") or "localhost"
    port = params.get("port") or 5432
    name = connection.settings_dict["NAME"]
    user = params.get("user") or "postgres"
    if host.startswith("/"):  # a socket folder, as the embedded server uses
        return f"postgres://{user}@/{name}?host={host}&port={port}"
    return f"postgres://{user}:{params.get('password', '')}@{host}:{port}/{name}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(child) for child in found.stdout.split()]


class Server:
    """`manage.py serve` on a port of its own, started again after each kill."""

    def __init__(self, *, env: dict | None = None) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "CHAT_RATE_PER_IP": "1000000",
            "LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, seconds: float = 120) -> float:
        """Start serve and wait for /healthz; returns the moment it answered (monotonic)."""
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(self.port)],
            cwd=settings.BASE_DIR,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2):
                    return time.monotonic()
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("serve exited during start-up") from None
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"serve did not answer /healthz within {seconds} s")

    def kill(self) -> None:
        """A crash: SIGKILL to web and worker (each leads a process group of its own: the
        worker's cluster processes go with it) and to serve, nothing to clean up after."""
        assert self.proc is not None
        for child in children_of(self.proc.pid):
            try:
                os.killpg(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        groups = children_of(self.proc.pid)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        # serve stops its children, but a worker it had to kill leaves its cluster's processes
        # behind (holding database connections): nothing of a bench outlives it.
        for group in groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass


# --- Answers ------------------------------------------------------------------------------------
async def _ask(url: str, visitor: str, question: str) -> dict:
    """Ask on a new widget socket; returns once the bot's answer is saved as pending."""
    import websockets

    async with websockets.connect(url, origin=ORIGIN, open_timeout=60) as ws:
        await ws.send(json.dumps({"type": "hello", "visitor_id": visitor}))
        await _frame(ws, "ready")  # a new visitor: no conversation until the first message
        await ws.send(
            json.dumps({"type": "message", "client_message_id": uuid.uuid4().hex, "text": question})
        )
        asked = None
        while True:
            frame = await _frame(ws, "message.created")
            message = frame["message"]
            if message["sender"] == "user":
                asked = message
            elif message["sender"] == "ai" and asked is not None:
                return {"conversation_id": asked["conversation_id"], "asked": asked["id"]}


async def _frame(ws, kind: str, seconds: float = 120) -> dict:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=seconds))
        if frame.get("type") == kind:
            return frame


async def _await_answer(url: str, visitor: str, asked: dict, seconds: float) -> bool:
    """The customer's widget reconnecting as it does (hello with where it left off, again
    while the server is not listening), until the answer to `asked` arrives complete."""
    from websockets.exceptions import WebSocketException

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            return await _answer_seen(url, visitor, asked, deadline)
        except TimeoutError:  # before OSError, its parent: the deadline passed
            return False
        except (OSError, WebSocketException):
            await asyncio.sleep(0.5)
    return False


async def _answer_seen(url: str, visitor: str, asked: dict, deadline: float) -> bool:
    import websockets

    async with websockets.connect(url, origin=ORIGIN, open_timeout=10) as ws:
        hello = {
            "type": "hello",
            "visitor_id": visitor,
            "conversation_id": asked["conversation_id"],
            "after_id": asked["asked"],
        }
        await ws.send(json.dumps(hello))
        messages = (await _frame(ws, "ready", seconds=10))["messages"]
        # Then what is pushed: the failed cut-off answer, the retry's tokens, its completion.
        while not any(_answers(m, asked) for m in messages):
            left = deadline - time.monotonic()
            frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=max(left, 0.01)))
            messages = [frame["message"]] if "message" in frame else []
        return True


def _answers(message: dict, asked: dict) -> bool:
    return (
        message.get("sender") == "ai"
        and message.get("reply_to_id") == asked["asked"]
        and message.get("state") == "complete"
    )


def answer_trial(server: Server, bot, question: str, seconds: float = 120) -> dict:
    """One crash mid-answer on `server` (running, answers slowed); leaves it running again."""
    url = f"ws://127.0.0.1:{server.port}/ws/widget/{bot.public_key}/"
    visitor = uuid.uuid4().hex
    asked = asyncio.run(_ask(url, visitor, question))
    server.kill()
    killed = time.monotonic()
    back = server.start()
    back_at = timezone.now()
    answered = asyncio.run(_await_answer(url, visitor, asked, seconds))
    recover_s = time.monotonic() - back
    answer = (
        Message.objects.filter(reply_to_id=asked["asked"], sender=Message.Sender.AI)
        .order_by("-id")
        .first()
    )
    complete = Message.objects.filter(
        reply_to_id=asked["asked"], sender=Message.Sender.AI, state=Message.State.COMPLETE
    ).count()
    return {
        "answered": answered and complete >= 1,
        "duplicated": complete > 1,
        "recover_s": round(recover_s, 1) if answered else None,
        "restart_s": round(back - killed, 1),
        # When the retry started and finished, from the server being back (the rest of
        # recover_s is the push to the widget).
        "retry_started_s": round((answer.created_at - back_at).total_seconds(), 1),
        "retry_done_s": round((answer.updated_at - back_at).total_seconds(), 1),
        # The retry's own pipeline time: on a restarted server it includes loading the
        # embedding model (seconds; tens of seconds on a busy machine).
        "pipeline_s": round(answer.trace.get("timings_ms", {}).get("total", 0) / 1000, 1),
    }


def bench_answers(bot, trials: int) -> dict:
    server = Server(env={"CHAT_FAULT_ANSWER_DELAY_SECONDS": str(ANSWER_DELAY_SECONDS)})
    server.start()
    results = []
    try:
        for i in range(trials):
            results.append(answer_trial(server, bot, QUESTIONS[i % len(QUESTIONS)]))
    finally:
        server.stop()
    summary = _summary(results, "answered")
    # When the retry started, from the server being back: the sweep's part of recover_s.
    started = [r["retry_started_s"] for r in results]
    summary["retry_started_s"] = {"p50": _p50(started), "max": max(started, default=None)}
    summary["restart_s_p50"] = _p50([r["restart_s"] for r in results])
    return summary


# --- Syncs --------------------------------------------------------------------------------------
def _articles(count: int, salt: str) -> bytes:
    """`count` articles of one passage each (two texts to embed with the title), unlike any
    earlier trial's, as JSON Lines."""
    words = "shipping returns warranty invoice account order parcel refund courier address"
    lines = []
    for i in range(count):
        body = " ".join(f"{w}{(i * 7 + j) % 97}" for j, w in enumerate(words.split() * 12))
        lines.append(
            json.dumps(
                {"id": f"{salt}-{i}", "title": f"Article {i} of {salt}", "body": f"{salt} {body}"}
            )
        )
    return "\n".join(lines).encode()


def _wait(condition, seconds: float, step: float = 0.2):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return None


def sync_trial(server: Server, bot, texts: int, seconds: float = 600) -> dict:
    """One crash of web and worker mid-sync on `server` (running); leaves it running again.

    A source synced once (the previous version), then a new version of `texts` texts to embed;
    killed once some of it is embedded. Checks that the previous version serves until the new
    one is complete, and that the new one ends with every chunk once.
    """
    salt = uuid.uuid4().hex[:8]
    source = source_upload(bot=bot, filename="old.jsonl", data=_articles(2, f"old{salt}"))

    def ready():
        source.refresh_from_db()
        return source.status == KnowledgeSource.Status.READY

    if not _wait(ready, seconds):
        raise RuntimeError(f"the previous version did not sync: {source.status} {source.error}")
    previous = set(Chunk.objects.filter(document__source=source).values_list("pk", flat=True))
    source_upload(
        bot=bot, source=source, filename="new.jsonl", data=_articles(texts // 2, f"new{salt}")
    )

    def embedding():
        source.refresh_from_db()
        return source.status == KnowledgeSource.Status.SYNCING and source.progress_done > 0

    if not _wait(embedding, seconds):
        raise RuntimeError(f"the new version never started embedding: {source.status}")
    server.kill()
    killed_at = timezone.now()
    saved = EmbeddingCache.objects.count()
    stalled = KnowledgeSource.objects.get(pk=source.pk)
    # The crash left the previous version whole.
    served = previous == set(
        Chunk.objects.filter(document__source=source).values_list("pk", flat=True)
    )
    back = server.start()
    requeued = _wait(
        lambda: KnowledgeSource.objects.filter(
            pk=source.pk, updated_at__gt=stalled.updated_at
        ).exists(),
        seconds,
    )
    requeue_s = time.monotonic() - back

    def synced():
        source.refresh_from_db()
        return (
            source.status == KnowledgeSource.Status.READY
            and source.last_synced_at is not None
            and source.last_synced_at > killed_at
        )

    done = bool(requeued and _wait(synced, seconds, step=0.5))
    recover_s = time.monotonic() - back
    chunks = Chunk.objects.filter(document__source=source)
    distinct = chunks.values("document_id", "position", "kind").distinct().count()
    documents = Document.objects.filter(source=source).count()
    return {
        "synced": done and documents == texts // 2 and chunks.count() == texts,
        "duplicated": chunks.count() != distinct,
        "previous_served": served and stalled.status == KnowledgeSource.Status.SYNCING,
        "recover_s": round(recover_s, 1) if done else None,
        "requeue_s": round(requeue_s, 1) if requeued else None,
        "progress_at_kill": f"{stalled.progress_done}/{stalled.progress_total}",
        "saved_at_kill": saved,
    }


def bench_syncs(bot, trials: int, texts: int) -> dict:
    server = Server()
    server.start()
    results = []
    try:
        for _ in range(trials):
            results.append(sync_trial(server, bot, texts))
    finally:
        server.stop()
    summary = _summary(results, "synced")
    summary["texts"] = texts
    summary["requeue_s_p50"] = _p50([r["requeue_s"] for r in results if r["requeue_s"]])
    summary["previous_served"] = sum(1 for r in results if r["previous_served"])
    # Texts embedded before each kill, which the resumed sync did not embed again.
    summary["progress_at_kill"] = [r["progress_at_kill"] for r in results]
    return summary


def _summary(results: list[dict], done: str) -> dict:
    seconds = [r["recover_s"] for r in results if r["recover_s"] is not None]
    return {
        "trials": len(results),
        done: sum(1 for r in results if r[done]),
        "duplicated": sum(1 for r in results if r["duplicated"]),
        "recover_s": {
            "p50": _p50(seconds),
            "max": max(seconds) if seconds else None,
        },
        **(
            {"pipeline_s_p50": _p50([r["pipeline_s"] for r in results])}
            if done == "answered"
            else {}
        ),
        "each_s": [r["recover_s"] for r in results],
    }


def _p50(values: list[float]) -> float | None:
    return round(float(np.percentile(values, 50)), 1) if values else None


class Command(BaseCommand):
    help = "Kill web and worker mid-answer and mid-sync N times; answered, duplicated, seconds."

    def add_arguments(self, parser):
        parser.add_argument("--answers", type=int, default=10, help="crashes mid-answer")
        parser.add_argument("--syncs", type=int, default=10, help="crashes mid-sync")
        parser.add_argument(
            "--sync-texts", type=int, default=3000, help="texts to embed in each synced version"
        )

    def handle(self, *args, answers: int, syncs: int, sync_texts: int, **options):
        report: dict = {}
        with throwaway_bot() as bot:
            bot.allowed_origins = [ORIGIN]
            bot.save(update_fields=["allowed_origins"])
            _load_demo(bot)
            if answers:
                report["answers"] = bench_answers(bot, answers)
                self.stdout.write(f"answers: {json.dumps(report['answers'])}")
            if syncs:
                report["syncs"] = bench_syncs(bot, syncs, sync_texts)
                self.stdout.write(f"syncs: {json.dumps(report['syncs'])}")
        self.stdout.write(json.dumps(report))
