"""The client's address of a request or socket: the widget's rate limits (chat.ratelimit) and
the audit log (audit.middleware) read it the same way."""

from __future__ import annotations

from django.conf import settings


def client_ip(*, remote_addr: str | None, forwarded_for: str | None) -> str | None:
    """The client's address: the socket's peer, or behind our proxy (BEHIND_PROXY) the address
    that proxy saw, which it appends as the last X-Forwarded-For hop. Earlier hops are whatever
    the client claimed and are never trusted."""
    if settings.SECURE_PROXY_SSL_HEADER and forwarded_for:
        last = forwarded_for.split(",")[-1].strip()
        if last:
            return last
    return remote_addr or None
