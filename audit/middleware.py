"""Who and from where, for every change a request makes: pghistory's context, which its
triggers copy into each event (audit.models)."""

from __future__ import annotations

from pghistory.middleware import HistoryMiddleware

from config.clientip import client_ip


class AuditContextMiddleware(HistoryMiddleware):
    """pghistory's middleware, for signed-in people only (customers in the widget and the API
    change nothing audited, and their requests skip the context's SQL), with the person's name
    as it was and the client's address. Goes after AuthenticationMiddleware."""

    def get_context(self, request) -> dict:
        user = request.user
        return {
            "user": user.pk,
            "name": user.display_name,
            "ip": client_ip(
                remote_addr=request.META.get("REMOTE_ADDR"),
                forwarded_for=request.headers.get("X-Forwarded-For"),
            ),
            "url": request.path,
        }

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        return super().__call__(request)
