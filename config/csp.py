"""The Content-Security-Policy of every page (django-csp), and what settings alone cannot say.

The policy itself is CONTENT_SECURITY_POLICY in config/settings.py. Pages load scripts and
styles from /static/ only; no inline script, handler or style attribute remains, so a link or
markup injected from data cannot run in this origin (issue 12, finding 5).
"""

from __future__ import annotations

from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.middleware import PolicyParts
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase


class CSPMiddleware(BaseCSPMiddleware):
    """django-csp's middleware, plus: a nonce in every policy, and this server's own sockets."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if report_only:
            return parts
        # django-csp adds the nonce only to responses whose template asked for it. Every page
        # gets one, so a script tag that carries it (the widget's, which hands it to the <style>
        # of browsers without constructable style sheets) never meets a policy without it.
        parts.nonce = str(request.csp_nonce)
        try:
            host = request.get_host()
        except DisallowedHost:
            return parts
        # 'self' covers ws(s) of this host in CSP 3 browsers; older ones need it named.
        socket = f"{'wss' if request.is_secure() else 'ws'}://{host}"
        parts.update = {**(parts.update or {})}
        parts.update["connect-src"] = [*parts.update.get("connect-src", []), socket]
        return parts


def frame_ancestors_replace(response: HttpResponseBase, sources: list[str]) -> None:
    """Who may frame this one response, instead of the policy's 'none' (the widget's iframe).

    django-csp's @csp_replace takes fixed values; this is the per-response form it reads."""
    response._csp_replace = {**(getattr(response, "_csp_replace", None) or {})}
    response._csp_replace["frame-ancestors"] = sources
