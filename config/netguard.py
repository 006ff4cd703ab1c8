"""Outgoing requests to addresses that tenants type (web sources, chat webhooks): is the host on
a private network? The worker must not read or post to this instance's internal services
(cloud metadata, the database, admin panels) on a tenant's behalf."""

from __future__ import annotations

import ipaddress
import socket


def private_address(host: str, port: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
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
