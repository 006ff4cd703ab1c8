"""bench_analytics scaled down: it generates, rolls up, measures, reports and cleans up."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from analytics.models import AgentDailyRollup, DailyRollup, RefreshState
from bots.models import Organization, User
from conversations.models import Conversation, Message


@pytest.mark.django_db
def test_bench_analytics_reports_its_figures_and_cleans_up():
    out = StringIO()
    call_command("bench_analytics", "--conversations", "300", "--loads", "3", stdout=out)
    text = out.getvalue()
    report = json.loads(text.strip().splitlines()[-1])

    assert report["rows"]["conversation"] == 300
    assert report["rows"]["message"] == 3000  # ten per conversation
    assert report["rows"]["transition"] > 300 and report["rows"]["log"] > 0
    assert report["dashboard_conversations"] > 250  # the 90-day view ends today
    assert report["dashboard"]["p95_ms"] > 0 and report["loads"] == 3
    assert report["full_rollup_s"] > 0 and report["day_rollup_s"] > 0
    assert report["day_rollup_days"] == 1  # only today's new data was recomputed
    assert report["new_day_rows"]["conversation"] == 3
    assert "target p95 ≤ 300 ms" in text and "| p50 | p95 | max |" in text

    assert not Organization.objects.filter(slug__startswith="bench-analytics-").exists()
    assert not User.objects.filter(email__endswith="@bench.example").exists()
    assert not Conversation.objects.exists() and not Message.objects.exists()
    assert not DailyRollup.objects.exists() and not AgentDailyRollup.objects.exists()
    assert not RefreshState.objects.exists()
