"""Each figure of the dashboard from the hand-built day of analytics/tests/conftest.py (`scene`),
whose right answers are worked out there and beside each assertion."""

from __future__ import annotations

from datetime import timedelta

import pytest

from analytics.figures import figures
from analytics.selectors import dashboard

pytestmark = pytest.mark.django_db


def test_rates_and_counts(scene, day):
    figures_ = dashboard(membership=scene["owner"], filters=scene["filters"])
    assert figures_["totals"] == {
        "conversations": 6,  # not the playground's, not Globex's
        "bot_resolved": 2,
        "agent_resolved": 2,
        "abandoned": 1,
        "escalated": 2,
        "open": 1,
        "ai_resolution_rate": 2 / 5,  # of the 5 that ended
        "escalation_rate": 2 / 6,
        "abandonment_rate": 1 / 5,
    }
    assert len(figures_["series"]) == 8
    by_day = {point["day"]: point for point in figures_["series"]}
    assert by_day[day] == {
        "day": day,
        "conversations": 6,
        "ai_resolution_rate": 0.4,
        "escalation_rate": 2 / 6,
        "abandonment_rate": 0.2,
    }
    assert by_day[day - timedelta(days=1)]["conversations"] == 0
    assert by_day[day - timedelta(days=1)]["ai_resolution_rate"] is None
    assert figures_["volume_by_channel"] == [
        {"channel": "widget", "label": "Widget", "conversations": 5},
        {"channel": "api", "label": "API", "conversations": 1},
    ]
    assert [(b["name"], b["conversations"]) for b in figures_["volume_by_bot"]] == [
        ("Acme Support", 6)
    ]
    assert figures_["demo"] is False
    assert figures_["as_of"] is not None


def test_escalation_reasons(scene):
    reasons = dashboard(membership=scene["owner"], filters=scene["filters"])["escalation_reasons"]
    assert reasons == [
        {
            "trigger": "human_request",
            "label": "The customer asks for a person",
            "rule_id": None,
            "rule_name": None,
            "count": 1,
        },
        {
            "trigger": "keywords",
            "label": "The message contains a keyword",
            "rule_id": scene["rule"].pk,
            "rule_name": "Refunds",
            "count": 1,
        },
    ]


def test_times(scene):
    times = dashboard(membership=scene["owner"], filters=scene["filters"])["times"]
    # Nearest rank: of two values the p50 is the first, the p90 the second.
    assert times["time_to_escalation"] == {"p50": 30, "p90": 60, "n": 2}  # c4 30 s, c3 60 s
    assert times["first_response"] == {"p50": 30, "p90": 90, "n": 2}  # c3 30 s, c4 90 s
    assert times["resolution_bot"] == {"p50": 120, "p90": 300, "n": 2}
    assert times["resolution_agent"] == {"p50": 600, "p90": 900, "n": 2}


def test_time_in_status(scene):
    stays = dashboard(membership=scene["owner"], filters=scene["filters"])["time_in_status"]
    assert stays == [
        # c1 10, c2 20, c3 60, c4 30, c5 15 → 135 / 5; c6 is still with the bot: not counted.
        {"status": "ai", "label": "With the bot", "avg_seconds": 27, "n": 5},
        # c3 80-60, c4 100-30
        {"status": "waiting", "label": "Waiting for an agent", "avg_seconds": 45, "n": 2},
        # c3 90-80, c4 120-100
        {"status": "active", "label": "With an agent", "avg_seconds": 15, "n": 2},
        # c1 110, c2 280, c3 510, c4 780, c5 1800 → 3480 / 5
        {
            "status": "awaiting_customer",
            "label": "Waiting for the customer",
            "avg_seconds": 696,
            "n": 5,
        },
        # c4 2000-900; the others are still resolved (a stay still going on does not count).
        {"status": "resolved", "label": "Resolved", "avg_seconds": 1100, "n": 1},
    ]


def test_csat_split_bot_and_agent(scene):
    csat = dashboard(membership=scene["owner"], filters=scene["filters"])["csat"]
    assert csat["bot"] == {"avg": 4.5, "n": 2, "distribution": [0, 0, 0, 1, 1]}
    assert csat["agent"] == {"avg": 2.5, "n": 2, "distribution": [0, 1, 1, 0, 0]}
    assert csat["all"] == {"avg": 3.5, "n": 4, "distribution": [0, 1, 1, 1, 1]}


def test_heatmap_cells(scene, day):
    heatmap = dashboard(membership=scene["owner"], filters=scene["filters"])["heatmap"]
    assert len(heatmap) == 7 and all(len(hours) == 24 for hours in heatmap)
    assert heatmap[day.weekday()][10] == 5
    assert heatmap[day.weekday()][23] == 1
    assert sum(map(sum, heatmap)) == 6


def test_quality(scene):
    quality = dashboard(membership=scene["owner"], filters=scene["filters"])["quality"]
    assert quality == {
        "turns": 6,
        "answered": 2,
        "hedged": 1,
        "clarifying": 1,
        "out_of_scope": 1,
        "handoff": 1,
        "thumbs_up": 1,
        "thumbs_down": 2,
        "to_fix": [
            {"source": "Returns policy", "kind": "document", "thumbs_down": 1, "low_confidence": 1},
            {"source": "refunds", "kind": "intent", "thumbs_down": 1, "low_confidence": 0},
        ],
    }


def test_agents_rows(scene):
    agents = dashboard(membership=scene["owner"], filters=scene["filters"])["agents"]
    sam, ian = scene["sam"], scene["ian"]
    assert agents == [
        {
            "agent_id": sam.pk,
            "name": sam.display_name,
            "handled": 2,  # replied in c3, resolved c3 and c4
            "resolved": 2,
            "first_response_p50": 30,  # c3; c4's first reply was Ian's
            "resolution_p50": 600,  # 600 and 900
            "csat_avg": 2.5,
            "csat_n": 2,
        },
        {
            "agent_id": ian.pk,
            "name": ian.display_name,
            "handled": 1,
            "resolved": 0,
            "first_response_p50": 90,
            "resolution_p50": None,
            "csat_avg": None,
            "csat_n": 0,
        },
    ]


def test_previous_period_is_empty_here(scene):
    previous = dashboard(membership=scene["owner"], filters=scene["filters"])["previous"]
    assert previous["period"]["days"] == 8
    assert previous["totals"]["conversations"] == 0
    assert previous["totals"]["ai_resolution_rate"] is None
    assert previous["times"]["first_response"] == {"p50": None, "p90": None, "n": 0}
    for absent in ("series", "heatmap", "agents", "previous"):
        assert absent not in previous
    assert "to_fix" not in previous["quality"]


def test_direct_computation_agrees(scene):
    """The hand-built answers above hold for the direct computation too."""
    from_rollups = dashboard(membership=scene["owner"], filters=scene["filters"])
    direct = figures(scene["filters"])
    for key, value in direct.items():
        assert from_rollups[key] == value, key
