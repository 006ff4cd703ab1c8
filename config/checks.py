"""Service checks: the database, pgvector and the channel layer.

Used three ways: `/healthz` reports them, daphne refuses to start when one fails, and Django's
check framework runs them before migrate, the worker and other commands. A REDIS_URL that does
not answer is an error, never a silent fall-back to the in-memory layer.
"""

from __future__ import annotations

import asyncio
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import connection


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0]


def check_pgvector() -> str:
    """Installed pgvector version, or 'not installed' before migrations ran."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the vector extension is not installed (run migrate)")
    return row[0]


def check_channel_layer() -> str:
    """Round-trip a message through the layer, so Redis is proven, not just configured."""
    layer = get_channel_layer()

    async def round_trip():
        channel = await layer.new_channel()
        token = uuid.uuid4().hex
        await layer.send(channel, {"type": "health.check", "token": token})
        message = await layer.receive(channel)
        if message.get("token") != token:
            raise RuntimeError("the channel layer returned a different message")

    async def bounded():
        await asyncio.wait_for(round_trip(), timeout=3)

    async_to_sync(bounded)()
    return type(layer).__name__


def require_services() -> None:
    try:
        check_database()
    except Exception as exc:
        raise ImproperlyConfigured(f"The database does not answer: {exc}") from exc
    try:
        check_channel_layer()
    except Exception as exc:
        where = f"REDIS_URL={settings.REDIS_URL}" if settings.REDIS_URL else "the in-memory layer"
        raise ImproperlyConfigured(
            f"The channel layer ({where}) does not answer: {exc or type(exc).__name__}. "
            "Start Redis, fix REDIS_URL, or unset it for the single-process default."
        ) from exc


@checks.register("services")
def services_check(app_configs=None, **kwargs):
    if not settings.REDIS_URL:
        return []  # the in-memory layer cannot be unreachable; the database is checked by use
    try:
        check_channel_layer()
    except Exception as exc:
        return [
            checks.Error(
                f"REDIS_URL={settings.REDIS_URL} does not answer: {exc or type(exc).__name__}",
                hint="Start Redis, fix REDIS_URL, or unset it for the single-process default.",
                id="handoff.E001",
            )
        ]
    return []
