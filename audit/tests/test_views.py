"""/o/<org>/audit/: owners and admins only, one organization's rows only, filters, pages, and
nothing that edits or deletes a row, in the page, in admin, or in the database."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import EVENT_MODELS, EscalationRuleEvent
from audit.selectors import PAGE_SIZE
from escalation.tests.factories import EscalationRuleFactory

pytestmark = pytest.mark.django_db

URL = reverse("audit_log", args=["acme"])


@pytest.fixture
def acme_changes(client, owner, admin_member, acme_bot):
    """Ian changes a rule of Acme's in admin."""
    rule = EscalationRuleFactory(bot=acme_bot, name="Billing", trigger="keywords", phrases="x")
    client.force_login(admin_member)
    client.post(
        reverse("admin:escalation_escalationrule_change", args=[rule.pk]),
        {
            "bot": acme_bot.pk,
            "name": "Billing refunds",
            "enabled": "on",
            "position": rule.position,
            "trigger": "keywords",
            "phrases": "x",
            "mode": "handoff",
            "priority": "medium",
            "queue": "tier1",
        },
    )
    client.logout()
    return rule


def _rows(response) -> list[str]:
    return [entry.line for entry in response.context["page"].object_list]


def test_it_shows_owners_and_admins_the_log(client, owner, admin_member, acme_changes):
    for person in (owner, admin_member):
        client.force_login(person)
        response = client.get(URL)
        assert response.status_code == 200
        assert (
            "Ian changed rule 'Billing refunds' of bot 'Acme Support' name: Billing → "
            "Billing refunds" in _rows(response)
        )
        assert "Audit log" in response.content.decode()


def test_it_refuses_agents_and_strangers(client, agent, acme_changes):
    assert client.get(URL).status_code == 302  # sign in first
    client.force_login(agent)
    assert client.get(URL).status_code == 403
    assert (
        reverse("audit_log", args=["acme"])
        not in client.get(reverse("console", args=["acme"])).content.decode()
    )


def test_olga_never_sees_acmes_rows_by_url_or_filter(
    client, outsider, owner, admin_member, globex_bot, acme_changes
):
    client.force_login(outsider)
    assert client.get(URL).status_code == 404
    assert client.get(URL + f"?actor={admin_member.pk}").status_code == 404
    own = reverse("audit_log", args=["globex"])
    EscalationRuleFactory(bot=globex_bot, name="Globex rule")
    response = client.get(own)
    assert response.status_code == 200
    lines = _rows(response)
    assert lines and not any("Billing" in line or "Acme" in line for line in lines)
    for query in (f"?actor={admin_member.pk}", "?kind=rules", "?kind=members"):
        response = client.get(own + query)
        assert not any("Billing" in line or "Acme" in line for line in _rows(response)), query
    # Acme's people are not Globex's to pick: the filter refuses them and shows Globex's rows.
    response = client.get(own + f"?actor={admin_member.pk}")
    assert response.status_code == 400
    # And Acme never sees Globex's.
    client.force_login(owner)
    assert not any("Globex" in line for line in _rows(client.get(URL)))


def test_it_filters_by_person_kind_and_date(client, owner, admin_member, acme_changes):
    client.force_login(owner)
    client.post(
        reverse("invitation_create", args=["acme"]),
        {"email": "nia@acme.example", "name": "", "role": "agent"},
    )
    by_ian = _rows(client.get(URL + f"?actor={admin_member.pk}"))
    assert by_ian and all(line.startswith("Ian ") for line in by_ian)
    members = _rows(client.get(URL + "?kind=members"))
    assert "Ada invited nia@acme.example as agent" in members
    assert not any("rule" in line for line in members)
    today = timezone.localdate()
    assert _rows(client.get(URL + f"?since={today}&until={today}&kind=members"))
    yesterday = today - timedelta(days=1)
    response = client.get(URL + f"?until={yesterday}")
    assert _rows(response) == []
    assert "Nothing recorded that matches these filters" in response.content.decode()


def test_a_bad_filter_is_explained_and_loses_nothing(client, owner, acme_changes):
    client.force_login(owner)
    today = timezone.localdate()
    response = client.get(URL + f"?since={today}&until={today - timedelta(days=3)}")
    assert response.status_code == 400
    assert "“From” is after “To”" in response.content.decode()
    assert _rows(response)  # everything, unfiltered, rather than an empty page
    assert client.get(URL + "?since=not-a-date").status_code == 400
    assert client.get(URL + "?kind=nope").status_code == 400


def test_it_pages_older_and_keeps_the_filters(client, owner, acme_bot):
    for n in range(PAGE_SIZE + 5):
        EscalationRuleFactory(bot=acme_bot, name=f"Rule {n}")
    client.force_login(owner)
    first = client.get(URL + "?kind=rules")
    assert len(_rows(first)) == PAGE_SIZE
    assert "'Rule 54'" in _rows(first)[0] and "'Rule 5'" in _rows(first)[-1]
    older = re.search(r'href="\?(kind=rules&amp;before=[^"]+)">Older', first.content.decode())
    assert older, "no link to the older rows"
    # A change made meanwhile does not shift what "Older" shows.
    EscalationRuleFactory(bot=acme_bot, name="Rule new")
    second = client.get(URL + "?" + html.unescape(older.group(1)))
    assert [line.split(" of bot")[0] for line in _rows(second)] == [
        f"System created rule 'Rule {n}'" for n in range(4, -1, -1)
    ]
    assert "Older" not in second.content.decode() and 'href="?kind=rules">Newest' in (
        second.content.decode()
    )
    # A cursor someone typed is the first page, not an error.
    assert len(_rows(client.get(URL + "?kind=rules&before=yesterday"))) == PAGE_SIZE


def test_the_database_refuses_to_edit_or_delete_an_event(acme_changes):
    event = EscalationRuleEvent.objects.filter(pgh_label="rule.changed").get()
    with pytest.raises(ProgrammingError, match="Cannot update or delete"), transaction.atomic():
        EscalationRuleEvent.objects.filter(pk=event.pk).update(name="Nothing happened")
    with pytest.raises(ProgrammingError, match="Cannot update or delete"), transaction.atomic():
        EscalationRuleEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(ProgrammingError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute('UPDATE "audit_escalationruleevent" SET name = %s', ["Raw SQL"])
    with connection.cursor() as cursor:  # every event table has the guard
        for model in EVENT_MODELS:
            cursor.execute(
                "SELECT tgenabled FROM pg_trigger WHERE tgrelid = %s::regclass "
                "AND tgname LIKE 'pgtrigger_append_only_%%'",
                [model._meta.db_table],
            )
            assert cursor.fetchall() == [("O",)], model
    event.refresh_from_db()
    assert event.name == "Billing refunds"


def test_neither_the_page_nor_admin_can_change_the_log(client, owner, superuser, acme_changes):
    client.force_login(owner)
    assert client.post(URL).status_code == 405
    page = client.get(URL).content.decode()
    assert '<form method="post"' not in page.split('id="audit-rows"')[1]
    client.force_login(superuser)
    admin_index = client.get(reverse("admin:index")).content.decode()
    assert "/admin/audit/" not in admin_index
    assert client.get("/admin/audit/escalationruleevent/").status_code == 404


def test_the_page_reads_the_same_number_of_queries_for_5_rows_or_50(
    client, owner, acme_bot, django_assert_max_num_queries
):
    client.force_login(owner)
    client.get(URL)  # the session and the user, once
    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    for n in range(PAGE_SIZE):
        EscalationRuleFactory(bot=acme_bot, name=f"Rule {n}")
    with django_assert_max_num_queries(len(few.captured_queries) + 1):
        # One event table more to read in full (the rules'), whatever the number of rows.
        response = client.get(URL)
    assert len(_rows(response)) == PAGE_SIZE


def test_a_deleted_bots_changes_stay_in_its_organizations_log(client, owner, acme_bot):
    EscalationRuleFactory(bot=acme_bot, name="Billing")
    client.force_login(owner)
    response = client.post(reverse("admin:bots_bot_delete", args=[acme_bot.pk]), {"post": "yes"})
    assert response.status_code == 302
    lines = _rows(client.get(URL))
    assert "Ada deleted bot 'Acme Support'" in lines
    # Its rules went with it: their rows still belong to Acme (the bot's name is gone with it).
    assert any(line.startswith("Ada deleted rule 'Billing'") for line in lines)
