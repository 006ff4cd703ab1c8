"""The weekly knowledge-gaps e-mail to owners (the worker: analytics/tasks.py, scheduled by
analytics/migrations/0004_gaps_digest_schedule.py).

Each organization's owners who have not opted out (Membership.gaps_digest: the profile page or
the e-mail's own unsubscribe link) get the gaps of the last seven full days, every bot, ranked
as on the analytics page, against the seven days before. A week with no open gap sends no
e-mail: a weekly "nothing to report" teaches people to ignore the sender, and the analytics page
says the same whenever they look.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from analytics import gaps
from analytics.selectors import Filters
from bots.models import Membership, Organization, Role

log = logging.getLogger(__name__)

DAYS = 7
SHOWN = 10
SALT = "analytics.gaps_digest.unsubscribe"


def unsubscribe_token(membership: Membership) -> str:
    """A signed token naming the membership: the link works without signing in, and forever
    (an old e-mail's link must still stop the next one)."""
    return signing.dumps({"m": membership.pk}, salt=SALT)


def membership_from_token(token: str, *, organization_slug: str) -> Membership:
    """The membership a link names, in the organization its URL names; Http404 for a token
    that is not ours (tampered, another salt) or a membership gone or elsewhere."""
    try:
        value = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise Http404("No such link.") from None
    pk = value.get("m") if isinstance(value, dict) else None
    membership = (
        Membership.objects.select_related("organization", "user")
        .filter(pk=pk if isinstance(pk, int) else None, organization__slug=organization_slug)
        .first()
    )
    if membership is None:
        raise Http404("No such link.")
    return membership


def unsubscribe_url(membership: Membership) -> str:
    return settings.SITE_URL + reverse(
        "analytics_gaps_unsubscribe",
        args=[membership.organization.slug, unsubscribe_token(membership)],
    )


def week(today: date | None = None) -> tuple[date, date]:
    """The last seven full days (settings.TIME_ZONE) before `today`."""
    today = today or timezone.localdate()
    return today - timedelta(days=DAYS), today - timedelta(days=1)


@dataclass
class Sent:
    organizations: int = 0
    emails: int = 0
    empty: int = 0  # organizations with recipients and no open gap: nothing sent
    failed: int = 0


def digests_send(*, today: date | None = None) -> Sent:
    """Send this week's digest to every owner who wants it. One failed address is logged and
    the rest still get theirs."""
    start, end = week(today)
    sent = Sent()
    recipients = (
        Membership.objects.filter(role=Role.OWNER, gaps_digest=True, user__is_active=True)
        .exclude(user__email="")
        .select_related("user", "organization")
        .order_by("organization_id", "id")
    )
    by_organization: dict[int, list[Membership]] = {}
    for membership in recipients:
        by_organization.setdefault(membership.organization_id, []).append(membership)
    for owners in by_organization.values():
        organization = owners[0].organization
        report = gaps.report(filters=Filters(organization.pk, start, end))
        sent.organizations += 1
        if not report.gaps:
            sent.empty += 1
            continue
        for membership in owners:
            try:
                _send(organization, membership, report, start, end)
                sent.emails += 1
            except Exception:
                sent.failed += 1
                log.exception("gaps digest to membership %s failed", membership.pk)
    return sent


def _send(organization: Organization, membership: Membership, report, start, end) -> None:
    rows = gaps.present(
        report.gaps[:SHOWN], organization_slug=organization.slug, base_url=settings.SITE_URL
    )
    query = urlencode({"range": "custom", "start": start.isoformat(), "end": end.isoformat()})
    unsubscribe = unsubscribe_url(membership)
    context = {
        "organization": organization,
        "membership": membership,
        "report": report,
        "rows": rows,
        "more": max(0, len(report.gaps) - SHOWN),
        "start": start,
        "end": end,
        "analytics_url": f"{settings.SITE_URL}{reverse('analytics', args=[organization.slug])}"
        f"?{query}#knowledge-gaps",
        "profile_url": settings.SITE_URL + reverse("profile"),
        "unsubscribe_url": unsubscribe,
    }
    n = report.questions
    mail = EmailMultiAlternatives(
        subject=f"{organization.name}: {n} question{'s' if n != 1 else ''} your bots could not "
        f"answer last week",
        body=render_to_string("analytics/email/gaps_digest.txt", context),
        to=[membership.user.email],
        # RFC 8058: mail clients offer their own one-click unsubscribe, which POSTs here.
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    mail.attach_alternative(
        render_to_string("analytics/email/gaps_digest.html", context), "text/html"
    )
    mail.send()
