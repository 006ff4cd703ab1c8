"""bench_gaps scaled down: it generates, measures, closes some questions and cleans up."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command

from analytics.models import GapQuestion
from bots.models import Organization
from conversations.models import Message


@pytest.mark.django_db
def test_bench_gaps_reports_its_figures_and_cleans_up():
    out = StringIO()
    call_command("bench_gaps", "--questions", "40", "--runs", "2", stdout=out)
    text = out.getvalue()

    assert text.startswith("questions: 40 in the period, 20 in the previous one")
    assert re.search(r"report, 2 runs: p50 [\d.]+ ms, p95 [\d.]+ ms", text)
    closed = int(re.search(r"(\d+) questions closed", text).group(1))
    assert closed > 0  # the gift-card FAQ answers the gift-card questions
    assert not Organization.objects.filter(slug__startswith="bench-gaps-").exists()
    assert not Message.objects.exists() and not GapQuestion.objects.exists()
