"""The dashboard's pushed partial: the "Now" tile, rendered from committed data
(`selectors.now`), the same partial the page and its htmx refresh render
(templates/analytics/dashboard.html#now), tagged by element id for htmx's out-of-band swap."""

from __future__ import annotations

from django.template.loader import render_to_string

from analytics import selectors
from bots.models import Organization


def now_html(*, organization_id: int) -> str:
    organization = Organization.objects.get(pk=organization_id)
    return render_to_string(
        "analytics/dashboard.html#now",
        {
            "organization": organization,
            "now": selectors.now(organization=organization),
            "oob": True,
        },
    )
