"""Which origin is this server's own: the one rule behind every "our own pages" decision.

A page is this server's own when its origin (scheme, host and port) is exactly the origin of
SITE_URL, or exactly the origin the request itself was addressed to (its scheme, and the Host
header, when that host is one the server answers to). Nothing looser: another port on the same
host is another site, as it is to the browser (a shop on http://127.0.0.1:3000 is not the
server on http://127.0.0.1:8000). The widget's socket and config.json, the iframe's
frame-ancestors, the Playground channel and the members' sockets all ask `origin_is_own`.

The request's scheme comes from X-Forwarded-Proto when a proxy sets it (`serve` runs daphne with
--proxy-headers, which trusts it too), else from the connection. A browser cannot set that header
on a WebSocket handshake, and on a cross-site fetch it would need a preflight this server never
grants; nor could it make a site's Origin equal this server's host.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}
# A WebSocket's scope names the socket's scheme; its page was served over the matching one.
_SOCKET_SCHEMES = {"ws": "http", "wss": "https"}


def origin_parse(value: str | None) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin or URL, the port made explicit (http 80, https 443);
    None for anything that is not an http(s) origin, such as the browsers' `null`."""
    if not value:
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6, which urlsplit returns without its brackets
        host = f"[{host}]"
    return scheme, host, port or DEFAULT_PORTS[scheme]


def origin_format(parsed: tuple[str, str, int]) -> str:
    """The origin as browsers write it: the default port left out."""
    scheme, host, port = parsed
    return f"{scheme}://{host}" if DEFAULT_PORTS[scheme] == port else f"{scheme}://{host}:{port}"


def addressed_origin(*, scheme: str, host: str | None, forwarded_proto: str | None = None):
    """The origin a request was addressed to, as (scheme, host, port), or None when its Host is
    missing or not one of ALLOWED_HOSTS (a name pointed at this server by someone else, as in
    DNS rebinding, does not make their page ours)."""
    if forwarded_proto:
        scheme = forwarded_proto.split(",")[0].strip().lower()
    if not host or scheme not in DEFAULT_PORTS:
        return None
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]  # Django's own default for DEBUG
    if not domain or not validate_host(domain, allowed):
        return None
    return origin_parse(f"{scheme}://{host}")


def request_addressed_origin(request):
    """`addressed_origin` of an HTTP request (its Host already checked by Django)."""
    return addressed_origin(
        scheme=request.scheme,
        host=request.get_host(),
        forwarded_proto=request.headers.get("X-Forwarded-Proto"),
    )


def scope_header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def scope_addressed_origin(scope):
    """`addressed_origin` of an ASGI WebSocket scope (daphne puts no scheme there: ws)."""
    return addressed_origin(
        scheme=_SOCKET_SCHEMES.get(scope.get("scheme", "ws"), "http"),
        host=scope_header(scope, b"host"),
        forwarded_proto=scope_header(scope, b"x-forwarded-proto"),
    )


def own_origins(*, addressed=None) -> list[str]:
    """This server's own origins: SITE_URL's, and the one the request was addressed to."""
    origins = []
    for parsed in (origin_parse(settings.SITE_URL), addressed):
        if parsed and origin_format(parsed) not in origins:
            origins.append(origin_format(parsed))
    return origins


def origin_is_own(origin: str | None, *, addressed=None) -> bool:
    """Whether a page of `origin` is one of this server's own (see the module's docstring)."""
    parsed = origin_parse(origin)
    return parsed is not None and parsed in (origin_parse(settings.SITE_URL), addressed)


class OwnOriginValidator:
    """ASGI middleware for the members' sockets: only this server's own pages may open them.

    Channels' AllowedHostsOriginValidator checks the origin's host alone, so any port of an
    allowed host passed; and the session cookie a member's socket authenticates with is sent
    to every port of a host."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if not origin_is_own(
            scope_header(scope, b"origin"), addressed=scope_addressed_origin(scope)
        ):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
