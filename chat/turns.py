"""The one turn scheduler: every answer to a customer message runs here, whatever brought the
message in (the widget's socket, the HTTP API, the recovery sweep).

- One conversation, one turn at a time, in arrival order: two quick messages are answered one
  after the other, the second reading the first's answer (runner._turn_build), instead of two
  answers streaming into each other. A turn waiting for the one ahead of it holds no thread:
  it waits on the event loop.
- Bounded: at most CHAT_TURN_THREADS turns run at once in a process. A turn holds its thread
  for the whole answer (embedding, search, an LLM stream that may take seconds), so turns have
  a pool of their own: they cannot starve the short ORM calls of every other socket, and only
  so many answers compete for the CPU.
- One bookkeeping: every turn of the process is in `_Process.in_flight` from the moment it is
  submitted to its end, referenced there so the event loop does not drop it. A turn is not
  cancelled when the socket or HTTP client that asked for it goes away: the answer completes
  in the database, and the customer gets it on reconnect (or from the API's conversation).
- Per process: a forked child (daphne test servers, pre-forking hosts) starts afresh instead of
  inheriting a pool that believes its parent's idle threads exist, or a lock one of them held.

The order holds within a process. Across processes (several web processes, the worker's
recovery) the runner's own check keeps one answer per message (services.message_start_bot).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from chat import runner
from conversations.models import Message
from knowledge.embeddings import LOCAL_MINILM, get_embedder

Emit = Callable[[dict], None]


@dataclass
class _Process:
    pid: int
    pool: ThreadPoolExecutor
    # Held by every running turn, those run in a caller's thread (the recovery's) included.
    slots: threading.BoundedSemaphore
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Conversation id → the last turn submitted for it: the next one starts when it ends.
    last: dict[int, Future] = field(default_factory=dict)
    # Every turn not yet ended (its ticket) → its task on the event loop, or None for a turn
    # run in its caller's thread.
    in_flight: dict[Future, asyncio.Future | None] = field(default_factory=dict)


_process: _Process | None = None
_creating = threading.Lock()


def _forget_after_fork() -> None:
    global _process, _creating
    _process, _creating = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def _here() -> _Process:
    global _process
    with _creating:
        if _process is None or _process.pid != os.getpid():
            threads = settings.CHAT_TURN_THREADS
            _process = _Process(
                pid=os.getpid(),
                pool=ThreadPoolExecutor(max_workers=threads, thread_name_prefix="turn"),
                slots=threading.BoundedSemaphore(threads),
            )
        return _process


def _join(process: _Process, conversation_id: int) -> tuple[Future, Future | None]:
    """A ticket at the end of the conversation's line, and the turn ahead of it (None: none)."""
    ticket: Future = Future()
    ticket.set_running_or_notify_cancel()
    with process.lock:
        ahead = process.last.get(conversation_id)
        process.last[conversation_id] = ticket
        process.in_flight[ticket] = None
    return ticket, ahead


def _leave(process: _Process, conversation_id: int, ticket: Future) -> None:
    """The turn ended (or will never run): the next in its conversation's line may start."""
    with process.lock:
        if ticket.done():
            return
        process.in_flight.pop(ticket, None)
        if process.last.get(conversation_id) is ticket:
            del process.last[conversation_id]
        # Under the lock, so a second call finds it done. Its waiters' callbacks only schedule
        # (call_soon_threadsafe, a condition's notify): none takes this lock.
        ticket.set_result(None)


def turn_submit(*, message: Message, emit: Emit | None = None) -> asyncio.Future:
    """Queue the turn that answers the customer's `message` behind its conversation's earlier
    turns, and return its task; call it on the event loop of the socket or response asking.

    `emit`, when given, gets each of the turn's events (chat.runner.turn_run) in the turn's
    thread: the HTTP API streams them. The socket passes none: the events reach it, and every
    other follower of the conversation, through the conversation's group.
    """
    process = _here()
    conversation_id = message.conversation_id
    ticket, ahead = _join(process, conversation_id)
    task = asyncio.ensure_future(_turn(process, ticket, ahead, message, emit))
    with process.lock:
        if not ticket.done():
            process.in_flight[ticket] = task
    return task


async def _turn(
    process: _Process, ticket: Future, ahead: Future | None, message: Message, emit: Emit | None
) -> None:
    try:
        if ahead is not None:
            # How the turn ahead ended is its own business; this one starts after it.
            await asyncio.wait([asyncio.wrap_future(ahead)])
        # Through asgiref, not loop.run_in_executor: the turn's pushes (async_to_sync) must run
        # on this event loop, where the in-memory channel layer's queues live.
        drain = sync_to_async(_drain, thread_sensitive=False, executor=process.pool)
        await drain(process, ticket, message, emit)
    finally:
        # Already done when the turn ran; here for a turn that never got to (the loop closing).
        _leave(process, message.conversation_id, ticket)


def _drain(process: _Process, ticket: Future, message: Message, emit: Emit | None) -> None:
    """Run the turn to the end in this pool thread, then give back its database connection."""
    try:
        with process.slots:
            for event in runner.turn_run(message=message):
                if emit is not None:
                    emit(event)
    finally:
        # Kept for reuse within CONN_MAX_AGE (production); closed at once where it is 0 (tests).
        close_old_connections()
        _leave(process, message.conversation_id, ticket)


def turn_run_here(*, message: Message, attempt: int) -> None:
    """Run the turn that answers `message` in the calling thread, after its conversation's
    earlier turns: for the recovery sweep, already in a worker thread of its own, which holds
    its lock and its database connection across the turns it retries."""
    process = _here()
    ticket, ahead = _join(process, message.conversation_id)
    try:
        if ahead is not None:
            futures_wait([ahead])
        with process.slots:
            for _event in runner.turn_run(message=message, attempt=attempt):
                pass
    finally:
        _leave(process, message.conversation_id, ticket)


def turns_in_flight() -> int:
    """How many turns this process has submitted and not yet ended."""
    process = _here()
    with process.lock:
        return len(process.in_flight)


_warmed_pid: int | None = None


def warm_up() -> None:
    """Load the local embedding model in the background, once per serving process.

    Importing torch and loading MiniLM takes seconds; without this the first customer after
    every start waits for it, and under load everyone queued behind them (`bench_chat`). Called
    on the first widget connection rather than at import: a thread importing torch while a
    test server or a pre-forking host forks would leave the child holding its locks.
    """
    global _warmed_pid
    if not settings.EMBEDDING_PRELOAD or settings.EMBEDDING_MODEL != LOCAL_MINILM:
        return
    if _warmed_pid == os.getpid():
        return
    _warmed_pid = os.getpid()
    threading.Thread(
        target=lambda: get_embedder(LOCAL_MINILM).embed(["warm up"]),
        name="warm-embedder",
        daemon=True,
    ).start()
