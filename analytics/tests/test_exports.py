"""The CSV of each dashboard table, on the hand-built set (handbuilt.py works the figures out)."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics.exports import table_csv
from analytics.services import rollups_refresh
from analytics.tests import handbuilt

pytestmark = pytest.mark.django_db


@pytest.fixture
def figures(acme_bot, globex_bot, agent, admin_member, owner):
    built = handbuilt.build(acme_bot=acme_bot, globex_bot=globex_bot, sam=agent, ian=admin_member)
    rollups_refresh(full=True)
    return built


def _csv(client, user, table, query="?range=30"):
    client.force_login(user)
    response = client.get(reverse("analytics_csv", args=["acme", table]) + query)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return response, list(csv.DictReader(io.StringIO(response.content.decode())))


def test_the_rates_table_has_every_day_and_the_days_figures(client, owner, figures):
    response, rows = _csv(client, owner, "rates")
    today = timezone.localdate()
    start = today - timezone.timedelta(days=29)
    assert response["Content-Disposition"] == (
        f'attachment; filename="acme-rates-{start:%Y%m%d}-{today:%Y%m%d}.csv"'
    )
    assert len(rows) == 30  # zeros included
    day = timezone.localtime(figures["t0"]).date().isoformat()
    [row] = [r for r in rows if r["day"] == day]
    assert row["conversations"] == "5"
    assert float(row["ai_resolution_rate"]) == pytest.approx(0.25)
    assert float(row["escalation_rate"]) == pytest.approx(0.4)
    assert float(row["abandonment_rate"]) == pytest.approx(0.25)
    empty = next(r for r in rows if r["day"] != day)
    assert empty["conversations"] == "0" and empty["ai_resolution_rate"] == ""


def test_escalation_reasons_times_and_time_in_status(client, owner, figures):
    _, reasons = _csv(client, owner, "escalation_reasons")
    rule = figures["rule"]
    assert sorted((r["trigger"], r["rule_id"], r["rule_name"], r["count"]) for r in reasons) == [
        ("human_request", "", "", "1"),
        ("human_request", str(rule.pk), "Asks for a person", "1"),
    ]
    _, times = _csv(client, owner, "times")
    assert {r["figure"]: (r["p50_seconds"], r["p90_seconds"], r["n"]) for r in times} == {
        "time_to_escalation": ("30", "60", "2"),
        "first_response": ("120", "120", "1"),
        "resolution_bot": ("300", "300", "1"),
        "resolution_agent": ("600", "1200", "2"),
    }
    _, stays = _csv(client, owner, "time_in_status")
    by_status = {r["status"]: (r["avg_seconds"], r["n"]) for r in stays}
    assert by_status["ai"] == ("60", "1")
    assert by_status["waiting"] == ("120", "1")
    assert by_status["active"] == ("420", "1")
    assert "closed" not in by_status


def test_csat_bot_beside_agent(client, owner, figures):
    _, rows = _csv(client, owner, "csat")
    by_side = {r["resolved_by"]: r for r in rows}
    assert float(by_side["bot"]["avg"]) == 5.0 and by_side["bot"]["score_5"] == "1"
    assert float(by_side["agent"]["avg"]) == 3.5 and by_side["agent"]["n"] == "2"
    assert (by_side["agent"]["score_3"], by_side["agent"]["score_4"]) == ("1", "1")
    assert float(by_side["all"]["avg"]) == 4.0  # the Playground's 1 star is not counted


def test_heatmap_volume_and_agents(client, owner, agent, admin_member, figures):
    _, heat = _csv(client, owner, "heatmap")
    local = timezone.localtime(figures["t0"])
    assert len(heat) == 7
    row = heat[local.weekday()]
    assert row[f"{local.hour:02d}h"] == "5"
    assert sum(int(v) for r in heat for k, v in r.items() if k != "weekday") == 5
    _, volume = _csv(client, owner, "volume")
    assert [(r["by"], r["id"], r["conversations"]) for r in volume] == [
        ("bot", str(figures["a"].bot_id), "5"),
        ("channel", "widget", "4"),
        ("channel", "api", "1"),
    ]
    _, agents = _csv(client, owner, "agents")
    by_id = {int(r["agent_id"]): r for r in agents}
    assert set(by_id) == {agent.pk, admin_member.pk}
    sam = by_id[agent.pk]
    assert (sam["handled"], sam["resolved"], sam["first_response_p50_seconds"]) == ("1", "1", "120")
    assert (sam["resolution_p50_seconds"], sam["csat_avg"], sam["csat_n"]) == ("600", "3.0", "1")
    assert by_id[admin_member.pk]["first_response_p50_seconds"] == ""


def test_quality_and_to_fix_have_their_headers_on_a_set_without_bot_turns(client, owner, figures):
    _, quality = _csv(client, owner, "quality")
    assert [r["figure"] for r in quality] == [
        "turns",
        "answered",
        "hedged",
        "clarifying",
        "out_of_scope",
        "handoff",
        "thumbs_up",
        "thumbs_down",
    ]
    assert all(r["count"] == "0" and r["share_of_turns"] == "" for r in quality)
    response, to_fix = _csv(client, owner, "to_fix")
    assert to_fix == []
    assert response.content.decode().startswith("source,kind,thumbs_down,low_confidence")


def test_an_unknown_table_is_a_404(client, owner, acme):
    client.force_login(owner)
    assert client.get(reverse("analytics_csv", args=["acme", "secrets"])).status_code == 404


def test_text_from_people_never_runs_as_a_spreadsheet_formula():
    data = {
        "quality": {
            "to_fix": [
                {"source": "=HYPERLINK(1)", "kind": "document", "thumbs_down": 1},
                {"source": "Returns", "kind": "intent", "thumbs_down": 0, "low_confidence": 2},
            ]
        }
    }
    data["quality"]["to_fix"][0]["low_confidence"] = 0
    rows = list(csv.reader(io.StringIO(table_csv(table="to_fix", data=data))))
    assert rows[1][0] == "'=HYPERLINK(1)"
    assert rows[2] == ["Returns", "intent", "0", "2"]
