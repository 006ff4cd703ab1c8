from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import cache_control, never_cache
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


def admin_login(request, extra_context=None):
    """Django admin's sign-in, replaced by the product's (allauth's, with its lockout after
    failed attempts): the admin's own form checked passwords with no limit at all. One door
    in, one lockout policy. Nothing posted here is ever checked."""
    target = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = ""
    target = target or reverse("admin:index")
    if not request.user.is_authenticated:
        return redirect_to_login(target, login_url=settings.LOGIN_URL)
    if request.user.is_active and request.user.is_staff:
        return HttpResponseRedirect(target)
    # Signed in without admin rights: sending them to sign in again would loop.
    raise PermissionDenied("This account has no access to the admin.")


@require_GET
@cache_control(public=True, max_age=86400)
def favicon(request):
    """/favicon.ico, which browsers ask for on every site whatever the page links: the same
    icon the pages link (static/favicon.svg), instead of a 404 in every log."""
    return FileResponse(
        (settings.BASE_DIR / "static" / "favicon.svg").open("rb"), content_type="image/svg+xml"
    )
