"""The analytics dashboard of an organization, its CSV tables and the conversations behind a
figure, mounted at /o/<org>/analytics/ (config/urls.py).

Members only (anyone else gets the 404 of every organization page). Owners and admins see every
figure; an agent sees their own row of the agents table, which is all `selectors.dashboard()`
returns for them. Filters come from the query string and are checked by
`selectors.filters_from`: a bad value is said on the page (400), never a 500.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from analytics import digest, exports, gaps, selectors
from bots import selectors as bot_selectors
from bots import services as bot_services
from bots.models import Membership
from conversations.models import Conversation

TEMPLATE = "analytics/dashboard.html"
# The query string keys of the filters form, kept on every link that shows the same figures.
FILTER_KEYS = ("range", "start", "end", "bot", "channel")
RANGES = (("today", "Today"), ("7", "Last 7 days"), ("30", "Last 30 days"), ("90", "Last 90 days"))
CUSTOM = "custom"
CHANNELS = (
    (Conversation.Channel.WIDGET, Conversation.Channel.WIDGET.label),
    (Conversation.Channel.API, Conversation.Channel.API.label),
)


def _membership(request, org) -> Membership:
    return bot_selectors.membership_get(user=request.user, organization_slug=org)


def _require_manager(membership: Membership) -> None:
    if not membership.can_manage:
        raise PermissionDenied("Only owners and admins see the organization's figures.")


def _params(request) -> dict:
    """The filters as asked. "Custom dates" in the range menu means: the start and end fields."""
    params = {k: request.GET[k] for k in FILTER_KEYS if request.GET.get(k, "").strip()}
    if params.get("range") == CUSTOM:
        del params["range"]
    else:
        # A preset wins over dates left in the fields from an earlier custom range.
        if "range" in params:
            params.pop("start", None)
            params.pop("end", None)
    return params


def _filters(request, membership):
    """(filters, error): the filters asked, or None and the sentence saying what is wrong."""
    params = _params(request)
    if request.GET.get("range") == CUSTOM and not ("start" in params or "end" in params):
        # Not the default 30 days under a menu that says "Custom dates".
        return None, "Give both a start and an end date, or pick a range."
    try:
        return selectors.filters_from(organization=membership.organization, params=params), ""
    except ValueError as exc:
        return None, str(exc)


def _form(request, membership) -> dict:
    params = _params(request)
    chosen = request.GET.get("range", "")
    if not chosen:
        chosen = CUSTOM if ("start" in params or "end" in params) else "30"
    return {
        "ranges": RANGES,
        "range": chosen,
        "custom": CUSTOM,
        "start": request.GET.get("start", ""),
        "end": request.GET.get("end", ""),
        "bots": bot_selectors.bot_list(organization=membership.organization),
        "bot": request.GET.get("bot", ""),
        "channels": CHANNELS,
        "channel": request.GET.get("channel", ""),
        "query": urlencode(params),
    }


@login_required
@require_GET
def analytics(request, org):
    """The dashboard; with htmx asking for the "Now" tile (its id), the tile only."""
    membership = _membership(request, org)
    organization = membership.organization
    if request.htmx and request.htmx.target == GAPS_ID:
        return _gaps_section(request, membership)
    if request.htmx and request.htmx.target == "analytics-now":
        _require_manager(membership)
        return render(
            request,
            f"{TEMPLATE}#now",
            {"organization": organization, "now": selectors.now(organization=organization)},
        )
    filters, error = _filters(request, membership)
    context = {
        "membership": membership,
        "organization": organization,
        "form": _form(request, membership),
        "error": error,
        "time_zone": settings.TIME_ZONE,
        "hours": range(24),
    }
    if filters is None:
        return render(request, TEMPLATE, context, status=400)
    data = selectors.dashboard(membership=membership, filters=filters)
    context["data"] = data
    context["previous"] = data.get("previous") or {}
    if membership.can_manage:
        context["now"] = selectors.now(organization=organization)
        context["charts"] = _charts(data)
    return render(request, TEMPLATE, context)


GAPS_ID = "knowledge-gaps"
GAPS_SHOWN = 20


def _gaps_section(request, membership: Membership):
    """The knowledge-gaps section alone: the page asks for it once loaded (hx-trigger="load"),
    so the figures never wait for the grouping (up to a second for thousands of questions)."""
    _require_manager(membership)
    filters, error = _filters(request, membership)
    if filters is None:
        return HttpResponse(error, status=400, content_type="text/plain; charset=utf-8")
    report = selectors.gaps(membership=membership, filters=filters)
    rows = gaps.present(report.gaps, organization_slug=membership.organization.slug)
    context = {
        "organization": membership.organization,
        "days": filters.days,
        "gaps": report,
        "gap_rows": rows,
        "gap_shown": rows[:GAPS_SHOWN],
    }
    return render(request, "analytics/_gaps.html", context)


def _charts(data: dict) -> dict:
    """What dashboard.js draws, handed over with json_script (no inline script)."""
    return {
        "rates": {
            "days": [row["day"] for row in data["series"]],
            "ai_resolution_rate": [row["ai_resolution_rate"] for row in data["series"]],
            "escalation_rate": [row["escalation_rate"] for row in data["series"]],
            "abandonment_rate": [row["abandonment_rate"] for row in data["series"]],
        },
        "reasons": {
            "labels": [
                f"{r['label']}: {r['rule_name']}" if r["rule_name"] else r["label"]
                for r in data["escalation_reasons"]
            ],
            "counts": [r["count"] for r in data["escalation_reasons"]],
        },
        "csat": {
            "bot": data["csat"]["bot"]["distribution"],
            "agent": data["csat"]["agent"]["distribution"],
        },
    }


@login_required
@require_GET
def analytics_csv(request, org, table):
    """One table of the dashboard as CSV, for the same filters. Agents: their own row of the
    agents table, nothing else."""
    membership = _membership(request, org)
    if table not in exports.TABLES:
        raise Http404("No such table.")
    if table not in exports.AGENT_TABLES:
        _require_manager(membership)
    filters, error = _filters(request, membership)
    if filters is None:
        return HttpResponse(error, status=400, content_type="text/plain; charset=utf-8")
    data = selectors.dashboard(membership=membership, filters=filters)
    response = HttpResponse(
        exports.table_csv(table=table, data=data), content_type="text/csv; charset=utf-8"
    )
    name = f"{membership.organization.slug}-{table}-{filters.start:%Y%m%d}-{filters.end:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


OUTCOME_TITLES = {
    "bot": "Resolved by the bot",
    "agent": "Resolved by an agent",
    "abandoned": "Abandoned",
    "escalated": "Escalated",
    "open": "Still open",
}


@login_required
@require_GET
def analytics_conversations(request, org):
    """The conversations behind a figure, newest first, each linking to the console: an
    escalation reason (?trigger=…&rule=…) or an outcome (?outcome=bot|agent|abandoned|…)."""
    membership = _membership(request, org)
    _require_manager(membership)
    filters, error = _filters(request, membership)
    trigger = request.GET.get("trigger", "").strip()
    rule = request.GET.get("rule", "").strip()
    outcome = request.GET.get("outcome", "").strip()
    context = {
        "membership": membership,
        "organization": membership.organization,
        "form": _form(request, membership),
        "error": error,
        "trigger": trigger,
        "rule": rule,
        "outcome": OUTCOME_TITLES.get(outcome, outcome),
    }
    if filters is not None and rule and not rule.isdigit():
        filters, context["error"] = None, "A rule is given by its number."
    if filters is not None:
        try:
            context["conversations"] = selectors.conversations_for(
                membership=membership,
                filters=filters,
                trigger=trigger or None,
                rule_id=int(rule) if rule else None,
                outcome=outcome or None,
            )
        except ValueError as exc:
            filters, context["error"] = None, str(exc)
    context["filters"] = filters
    status = 400 if filters is None else 200
    return render(request, "analytics/conversations.html", context, status=status)


@csrf_exempt  # RFC 8058 one-click: the mail client POSTs; the signed token is the credential
@require_http_methods(["GET", "POST"])
def gaps_unsubscribe(request, org, token):
    """The weekly gaps e-mail's unsubscribe link: no sign-in (the token names the membership).
    GET asks (a link scanner following it unsubscribes no one); POST stops the e-mail."""
    membership = digest.membership_from_token(token, organization_slug=org)
    done = request.method == "POST"
    if done and membership.gaps_digest:
        bot_services.membership_set_gaps_digest(membership=membership, enabled=False)
    return render(
        request, "analytics/gaps_unsubscribe.html", {"membership": membership, "done": done}
    )
