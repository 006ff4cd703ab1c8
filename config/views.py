from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, JsonResponse
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET

from config import checks


@never_cache
@require_GET
def healthz(request):
    """Liveness and readiness in one: 200 only when every dependency answers."""
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
            report[name] = {"ok": False, "error": str(exc) or type(exc).__name__}
    return JsonResponse(
        {"status": "ok" if healthy else "error", **report}, status=200 if healthy else 503
    )


@require_GET
@cache_control(public=True, max_age=86400)
def favicon(request):
    """/favicon.ico, which browsers ask for on every site whatever the page links: the same
    icon the pages link (static/favicon.svg), instead of a 404 in every log."""
    return FileResponse(
        (settings.BASE_DIR / "static" / "favicon.svg").open("rb"), content_type="image/svg+xml"
    )
