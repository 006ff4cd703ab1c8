"""How fast customers may send messages and requests, per visitor and per client IP, and how
many conversations one socket or one client address may start; counted in the cache.

Fixed one-minute windows: a counter per key and window, created with `cache.add` and counted
with `cache.incr`, both atomic on Redis, so every process shares the count when REDIS_URL is set
(with the in-memory cache each process counts on its own). A fixed window lets a burst of twice
the limit through across a window boundary; for flood protection that is good enough, and it
costs one round trip per message instead of a sorted set per key.

django-ratelimit would do the counting, but it is not among the dependencies and this is all of
it we need.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

# Moved to config (the audit log reads it too); the widget's socket still asks for it here.
from config.clientip import client_ip  # noqa: F401

WINDOW_SECONDS = 60
KEY_PREFIX = "chat-rate"


class RateLimited(Exception):
    """A refused message: when the sender may try again, and a sentence saying so."""

    def __init__(self, *, retry_after: int, message: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.message = message


def hit(key: str, *, limit: int, window: int = WINDOW_SECONDS) -> int | None:
    """Count one event for `key`; None if it is within `limit` per `window` seconds, else the
    seconds until the window ends and the sender may try again."""
    now = time.time()
    start = int(now // window) * window
    cache_key = f"{KEY_PREFIX}:{key}:{start}"
    # A little past the window, so a counter never expires between add and incr.
    cache.add(cache_key, 0, timeout=window + 5)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # evicted in between (locmem's cull): start the window again
        cache.set(cache_key, 1, timeout=window + 5)
        count = 1
    if count <= limit:
        return None
    return max(1, int(start + window - now + 0.999))


def chat_message_check(*, bot_id: int, visitor: str, ip: str | None = None) -> None:
    """Count a customer's message against CHAT_RATE_PER_IP (when `ip` is given) and
    CHAT_RATE_PER_VISITOR; raises RateLimited at the first limit hit.

    The IP limit is across bots: one client flooding many widgets is still one client.
    """
    _check("message", "messages", bot_id=bot_id, visitor=visitor, ip=ip)


def chat_request_check(*, bot_id: int, visitor: str, ip: str | None = None) -> None:
    """The same limits for the widget's other frames (hello, escalate, leave_email, feedback,
    rate), counted apart from messages so that asking for a person never costs a message."""
    _check("request", "requests", bot_id=bot_id, visitor=visitor, ip=ip)


def conversation_start_check(*, ip: str | None, started_on_socket: int) -> None:
    """Before a socket starts a conversation: at most CHAT_CONVERSATIONS_PER_SOCKET on one
    socket, and CHAT_CONVERSATIONS_PER_IP_HOUR from one client address in an hour."""
    if started_on_socket >= settings.CHAT_CONVERSATIONS_PER_SOCKET:
        raise RateLimited(
            retry_after=WINDOW_SECONDS,
            message="This chat has started as many conversations as it may. "
            "Reload the page to start another.",
        )
    if ip:
        limit = settings.CHAT_CONVERSATIONS_PER_IP_HOUR
        retry = hit(f"conversations:ip:{ip}", limit=limit, window=3600)
        if retry:
            raise RateLimited(
                retry_after=retry,
                message=f"That is more than {limit} new conversations an hour from your "
                f"network. Please wait {retry // 60 + 1} minutes, or write in this one.",
            )


def _check(kind: str, noun: str, *, bot_id: int, visitor: str, ip: str | None) -> None:
    if ip:
        retry = hit(f"{kind}:ip:{ip}", limit=settings.CHAT_RATE_PER_IP)
        if retry:
            raise _limited(retry, settings.CHAT_RATE_PER_IP, noun, "from your network")
    retry = hit(f"{kind}:visitor:{bot_id}:{visitor}", limit=settings.CHAT_RATE_PER_VISITOR)
    if retry:
        raise _limited(retry, settings.CHAT_RATE_PER_VISITOR, noun, "")


def _limited(retry_after: int, limit: int, noun: str, where: str) -> RateLimited:
    source = f" {where}" if where else ""
    return RateLimited(
        retry_after=retry_after,
        message=f"That is more than {limit} {noun} a minute{source}. "
        f"Please wait {retry_after} seconds and send it again.",
    )
