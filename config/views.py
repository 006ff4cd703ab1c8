from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config import checks

log = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request):
    """Liveness and readiness in one: 200 only when every dependency answers.

    Anyone (a load balancer, an uptime monitor) learns ok or not. What each dependency said,
    versions and errors (a driver's error names socket paths and hosts), is for a superuser
    signed in (not organizations' owners: they are staff only for their own tenant's admin) or
    a caller with `Authorization: Bearer $HEALTHZ_TOKEN`; failures are logged in full.
    """
    report, healthy = {}, True
    for name, check in (
        ("database", checks.check_database),
        ("pgvector", checks.check_pgvector),
        ("channel_layer", checks.check_channel_layer),
    ):
        try:
            report[name] = {"ok": True, "detail": check()}
        except Exception as exc:
            healthy = False
            log.warning("health check %s failed: %s", name, exc, exc_info=True)
            report[name] = {"ok": False, "error": str(exc) or type(exc).__name__}
    body = {"status": "ok" if healthy else "error"}
    if _may_see_details(request):
        body.update(report)
    return JsonResponse(body, status=200 if healthy else 503)


def _may_see_details(request) -> bool:
    if request.user.is_authenticated and request.user.is_superuser:
        return True
    token = settings.HEALTHZ_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given, token)
