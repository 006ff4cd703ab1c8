"""Outgoing requests to addresses that tenants type (web sources, chat webhooks): is the host on
a private network? The worker must not read or post to this instance's internal services
(cloud metadata, the database, admin panels) on a tenant's behalf.

`guarded_client` is the one HTTP client for such requests; each caller says in its own words
why a refused address was refused (AddressRefused carries what was found).
"""

from __future__ import annotations

import ipaddress
import re
import socket

import httpx2 as httpx

IP = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Exception):
    """A request the guard stopped before it connected: its address is not http(s), its host
    does not resolve (`reason` says why), or the host is on a private network (`ip`)."""

    def __init__(self, url: httpx.URL, *, ip: IP | None = None, reason: str = "") -> None:
        self.url, self.ip, self.reason = url, ip, reason
        if ip is not None:
            message = f"{url.host} is on a private network ({ip})."
        elif reason:
            message = f"Could not resolve {url.host}: {reason}."
        else:
            message = f"{url} is not an http or https address."
        super().__init__(message)


def private_address(host: str, port: int) -> IP | None:
    """The first address `host` resolves to that is not globally routable (loopback, RFC 1918,
    link-local, …), or None. Raises socket.gaierror or UnicodeError when it does not resolve.

    Checked at resolution: a DNS answer that changes before the connection could slip through,
    which an egress proxy would close.
    """
    for info in socket.getaddrinfo(host, port):
        ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if not ip.is_global:
            return ip
    return None


def guarded_client(*, allow_private: bool, **options) -> httpx.Client:
    """An httpx.Client (`options` are its own: timeout, headers, follow_redirects…) that raises
    AddressRefused before connecting to an address that is not http(s), or, unless
    `allow_private`, to a host on a private network. The check runs before every request,
    redirects included: a public address may redirect inward."""

    def refuse_private_addresses(request: httpx.Request) -> None:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise AddressRefused(url)
        if allow_private:
            return
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            ip = private_address(url.host, port)
        except (socket.gaierror, UnicodeError) as exc:
            raise AddressRefused(url, reason=error_reason(exc)) from None
        if ip is not None:
            raise AddressRefused(url, ip=ip)

    return httpx.Client(event_hooks={"request": [refuse_private_addresses]}, **options)


def error_reason(exc: Exception) -> str:
    """A network error as the end of a sentence: "[Errno 111] Connection refused" becomes
    "connection refused"."""
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)).strip().rstrip(".")
    return (text[:1].lower() + text[1:]) if text else type(exc).__name__
