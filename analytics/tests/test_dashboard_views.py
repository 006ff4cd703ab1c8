"""The dashboard's pages for each kind of person, on the hand-built set of handbuilt.py (the
figures the tests expect are worked out there)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from analytics.services import rollups_refresh
from analytics.tests import handbuilt
from conversations.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

TABLES = (
    "rates",
    "escalation_reasons",
    "times",
    "time_in_status",
    "csat",
    "heatmap",
    "volume",
    "quality",
    "to_fix",
    "agents",
)


@pytest.fixture
def figures(acme_bot, globex_bot, agent, admin_member, owner, outsider):
    built = handbuilt.build(acme_bot=acme_bot, globex_bot=globex_bot, sam=agent, ian=admin_member)
    rollups_refresh(full=True)
    return built


def _page(client, user, query="", **headers):
    client.force_login(user)
    return client.get(f"{reverse('analytics', args=['acme'])}{query}", **headers)


def _figure(html: str, name: str) -> str:
    match = re.search(rf'data-figure="{name}"[^>]*>(.*?)</', html, re.S)
    assert match, f"no figure {name}"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def _tile(html: str, name: str) -> str:
    match = re.search(rf'data-figure="{name}">.*?class="tile-value">(.*?)</p>', html, re.S)
    assert match, f"no tile {name}"
    return match.group(1).strip()


def test_it_shows_the_owner_every_figure_with_the_previous_period(client, owner, figures):
    response = _page(client, owner)
    assert response.status_code == 200
    html = response.content.decode()
    assert _tile(html, "ai-resolution-rate") == "25%"
    assert _tile(html, "escalation-rate") == "40%"
    assert _tile(html, "abandonment-rate") == "25%"
    assert _figure(html, "conversations") == "5"
    assert _figure(html, "bot-resolved") == "1"
    assert _figure(html, "agent-resolved") == "2"
    # Beside each figure, the previous 30 days (nothing then: the change cannot be computed).
    assert "previous period 0" in html
    assert "previous period –" in html
    # Times as people say them.
    first_response = re.search(r'data-figure="first-response">(.*?)</tr>', html, re.S).group(1)
    assert "2 min" in first_response
    # Escalation reasons link to their conversations; the rule is Acme's.
    rule = figures["rule"]
    assert f"trigger=human_request&amp;rule={rule.pk}" in html
    assert "Asks for a person" in html
    # CSAT side by side, and both agents.
    assert "5.00" in html and "3.50" in html
    assert 'data-agent-id="{}"'.format(figures["b"].assigned_agent_id) in html
    assert 'data-agent-id="{}"'.format(figures["e"].assigned_agent_id) in html
    # The charts' figures, for dashboard.js, as JSON (no inline script).
    assert 'id="analytics-charts" type="application/json"' in html
    assert "Days and hours in UTC" in html
    # The live tile: one waiting (Dora), on the organization's socket.
    assert _figure(html, "waiting") == "1"
    assert 'ws-connect="/ws/o/acme/?shows=analytics.now"' in html


def test_olga_of_another_organization_sees_none_of_it(client, outsider, figures):
    client.force_login(outsider)
    assert client.get(reverse("analytics", args=["acme"])).status_code == 404
    for table in TABLES:
        assert client.get(reverse("analytics_csv", args=["acme", table])).status_code == 404
    url = reverse("analytics_conversations", args=["acme"])
    assert client.get(f"{url}?trigger=human_request").status_code == 404
    # Her own dashboard holds none of Acme's figures, rules or customers.
    html = client.get(reverse("analytics", args=["globex"])).content.decode()
    assert _figure(html, "conversations") == "1"
    assert "Asks for a person" not in html and "Acme Support" not in html
    csv = client.get(reverse("analytics_csv", args=["globex", "escalation_reasons"]))
    assert "Asks for a person" not in csv.content.decode()
    assert "Globex secret rule" in csv.content.decode()


def test_an_agent_sees_only_their_own_row(client, agent, figures):
    response = _page(client, agent)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Your figures" in html
    assert f'data-agent-id="{agent.pk}"' in html
    assert f'data-agent-id="{figures["e"].assigned_agent_id}"' not in html
    assert "AI resolution rate" not in html and "Escalation reasons" not in html
    assert 'id="analytics-now"' not in html and "analytics-charts" not in html
    # Their CSV is their row; every other table, and the conversations behind figures, is not
    # theirs to read.
    csv = client.get(reverse("analytics_csv", args=["acme", "agents"])).content.decode()
    assert len(csv.strip().splitlines()) == 2 and f"\r\n{agent.pk},Sam," in csv
    for table in set(TABLES) - {"agents"}:
        assert client.get(reverse("analytics_csv", args=["acme", table])).status_code == 403
    assert client.get(reverse("analytics_conversations", args=["acme"])).status_code == 403
    # Nor the organization's live tile.
    tile = _page(client, agent, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="analytics-now")
    assert tile.status_code == 403


@pytest.mark.parametrize(
    "query, sentence",
    [
        ("?range=365", "The range is today, 7, 30 or 90 days."),
        ("?range=custom&start=2026-02-30&end=2026-03-01", "is not a date"),
        ("?range=custom&start=2026-03-02&end=2026-03-01", "The start date is after the end date."),
        ("?range=custom&start=2024-01-01&end=2026-01-01", "at most 366 days"),
        ("?range=custom&start=2026-01-01", "Give both a start and an end date"),
        ("?range=custom", "Give both a start and an end date"),
        ("?channel=playground", "The channel is widget or api."),
        ("?bot=abc", "There is no such bot in this organization."),
    ],
)
def test_a_bad_filter_is_said_on_the_page_not_a_500(client, owner, acme_bot, query, sentence):
    response = _page(client, owner, query)
    assert response.status_code == 400
    assert sentence in response.content.decode()
    assert 'role="alert"' in response.content.decode()
    csv = client.get(reverse("analytics_csv", args=["acme", "rates"]) + query)
    assert csv.status_code == 400 and sentence in csv.content.decode()


def test_another_organizations_bot_is_a_bad_filter(client, owner, acme_bot, globex_bot):
    response = _page(client, owner, f"?bot={globex_bot.pk}")
    assert response.status_code == 400
    assert "There is no such bot in this organization." in response.content.decode()


def test_filters_by_bot_and_channel_and_keeps_them_on_every_link(client, owner, acme_bot, figures):
    html = _page(client, owner, f"?range=7&bot={acme_bot.pk}&channel=api").content.decode()
    assert _figure(html, "conversations") == "1"  # Chen, the one API conversation
    assert _tile(html, "abandonment-rate") == "100%"
    assert f"rates.csv?range=7&amp;bot={acme_bot.pk}&amp;channel=api" in html
    assert f'<option value="{acme_bot.pk}" selected>' in html
    assert '<option value="api" selected>' in html
    # A preset wins over dates left in the fields from a custom range.
    html = _page(client, owner, "?range=7&start=2020-01-01&end=2020-01-02").content.decode()
    assert _figure(html, "conversations") == "5"


def test_the_conversations_behind_an_escalation_reason_link_to_the_console(client, owner, figures):
    client.force_login(owner)
    url = reverse("analytics_conversations", args=["acme"])
    html = client.get(f"{url}?trigger=human_request&rule={figures['rule'].pk}").content.decode()
    b = figures["b"]
    assert reverse("console_conversation", args=["acme", b.pk]) in html
    assert f'data-conversation-id="{figures["d"].pk}"' not in html  # no rule
    html = client.get(f"{url}?trigger=human_request").content.decode()
    assert f'data-conversation-id="{figures["d"].pk}"' in html
    assert f'data-conversation-id="{b.pk}"' in html
    assert f'data-conversation-id="{figures["gus"].pk}"' not in html
    assert client.get(f"{url}?rule=abc").status_code == 400


def test_the_conversations_behind_an_outcome(client, owner, figures):
    client.force_login(owner)
    url = reverse("analytics_conversations", args=["acme"])
    html = client.get(f"{url}?range=7&outcome=agent").content.decode()
    shown = set(map(int, re.findall(r'data-conversation-id="(\d+)"', html)))
    assert shown == {figures["b"].pk, figures["e"].pk}
    assert "resolved by an agent" in html
    # The outcomes table links there with the page's filters.
    page = _page(client, owner, "?range=7").content.decode()
    assert f"{url}?range=7&amp;outcome=agent" in page
    response = client.get(f"{url}?outcome=maybe")
    assert response.status_code == 400 and "The outcome is one of" in response.content.decode()


def test_the_page_reads_the_same_number_of_queries_however_many_conversations(
    client, owner, acme_bot, globex_bot, agent, admin_member
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(owner)
    handbuilt.build(acme_bot=acme_bot, globex_bot=globex_bot, sam=agent, ian=admin_member)
    rollups_refresh(full=True)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("analytics", args=["acme"])).status_code == 200
    for _ in range(3):
        handbuilt.build(acme_bot=acme_bot, globex_bot=globex_bot, sam=agent, ian=admin_member)
    rollups_refresh(full=True)
    with CaptureQueriesContext(connection) as many:
        html = client.get(reverse("analytics", args=["acme"])).content.decode()
    assert _figure(html, "conversations") == "20"
    # Figures come from the rollups, not from a scan of the conversations per view.
    assert len(many) == len(few)


def test_the_now_tile_alone_for_its_refresh(client, owner, figures):
    response = _page(client, owner, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="analytics-now")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="analytics-now"')
    assert _figure(html, "waiting") == "1"
    assert _figure(html, "longest-wait") == "5 min"


def test_the_demo_banner_says_how_to_remove_the_demo_data(client, owner, acme_bot):
    from conversations.tests.factories import ConversationFactory

    ConversationFactory(
        customer=CustomerFactory(bot=acme_bot, visitor_id="demo-1", attributes={"demo": True})
    )
    rollups_refresh(full=True)
    html = _page(client, owner).content.decode()
    assert "Demo data." in html and "manage.py demo_history --remove" in html


def test_no_demo_banner_on_real_data(client, owner, figures):
    assert "Demo data." not in _page(client, owner).content.decode()


def test_the_navigation_links_to_analytics(client, owner, acme):
    client.force_login(owner)
    html = client.get(reverse("organization_detail", args=["acme"])).content.decode()
    assert f'href="{reverse("analytics", args=["acme"])}"' in html


def test_signed_out_people_are_sent_to_sign_in(client, acme):
    response = client.get(reverse("analytics", args=["acme"]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
