"""bench_search scaled down: it generates searchable text, measures every kind of query
through the history page, reports, and cleans up."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from bots.models import Organization, User
from conversations.models import Conversation, Message


@pytest.mark.django_db
def test_bench_search_reports_each_kind_of_query_and_cleans_up():
    out = StringIO()
    call_command("bench_search", "--conversations", "300", "--loads", "2", stdout=out)
    text = out.getvalue()
    report = json.loads(text.strip().splitlines()[-1])

    assert report["rows"]["message"] == 3000
    assert 30 <= report["rare_messages"] <= 34
    kinds = report["kinds"]
    assert set(kinds) == {
        "common word",
        "rare word",
        "phrase",
        "word + filters",
        "filters, no words",
        "common word, page 2",
    }
    assert kinds["common word"]["rows"] == 25 and kinds["common word, page 2"]["rows"] == 25
    assert 0 < kinds["rare word"]["rows"] <= report["rare_messages"]
    assert kinds["phrase"]["rows"] > 0 and kinds["word + filters"]["rows"] > 0
    assert all(k["p95_ms"] > 0 for k in kinds.values())
    assert "target p95 ≤ 200 ms" in text and "| query | rows | p50 | p95 | max |" in text

    assert not Organization.objects.filter(slug__startswith="bench-search-").exists()
    assert not User.objects.filter(email__endswith="@bench.example").exists()
    assert not Conversation.objects.exists() and not Message.objects.exists()
