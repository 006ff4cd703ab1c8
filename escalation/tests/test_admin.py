"""Escalation in Django admin is tenant data: Acme's owner configures and tests Acme's rules and
hours; Globex's owner never sees them, nor can test a message against them."""

from datetime import date

import pytest
from django.urls import reverse

from bots.models import Bot
from conversations.tests.factories import ConversationFactory
from escalation.defaults import DEFAULT_RULES
from escalation.models import BusinessHours, Holiday
from escalation.services import escalation_open
from escalation.tests.factories import BusinessHoursFactory, EscalationRuleFactory, HolidayFactory

pytestmark = pytest.mark.django_db

TEST_PAGE = "admin:escalation_escalationrule_test"


@pytest.fixture
def acme_rules(acme_bot):
    return [
        EscalationRuleFactory(bot=acme_bot, position=10, name="Refunds", phrases="refund"),
        EscalationRuleFactory(
            bot=acme_bot, position=20, name="Money again", phrases="refund\nmoney", mode="offer"
        ),
        EscalationRuleFactory(
            bot=acme_bot, position=30, name="Unsure", trigger="low_confidence", threshold=0.4
        ),
    ]


def test_an_owner_lists_the_rules_in_order_with_position_and_enabled_editable(
    client, owner, acme_rules
):
    client.force_login(owner)
    body = client.get(reverse("admin:escalation_escalationrule_changelist")).content.decode()
    assert body.index("Refunds") < body.index("Money again") < body.index("Unsure")
    assert 'name="form-0-position"' in body and 'name="form-0-enabled"' in body
    assert reverse(TEST_PAGE) in body


def test_another_organizations_owner_sees_none_of_acmes_rules(client, outsider, acme_rules):
    client.force_login(outsider)
    body = client.get(reverse("admin:escalation_escalationrule_changelist")).content.decode()
    assert "Refunds" not in body
    response = client.get(
        reverse("admin:escalation_escalationrule_change", args=[acme_rules[0].pk])
    )
    assert response.status_code == 302  # admin's "doesn't exist"


def test_the_test_page_shows_each_rule_and_the_winner(client, owner, acme_bot, acme_rules):
    client.force_login(owner)
    response = client.get(
        reverse(TEST_PAGE), {"bot": acme_bot.pk, "text": "I want my money back", "confidence": 0.2}
    )
    assert response.status_code == 200
    checks = response.context["result"]["checks"]
    assert [(c.rule.name, c.fired) for c in checks] == [
        ("Refunds", False),
        ("Money again", True),
        ("Unsure", True),
    ]
    assert response.context["result"]["winner"].rule.name == "Money again"
    body = response.content.decode()
    assert "Wins: <strong>Money again</strong>" in body
    assert "answer confidence 0.20 &lt; 0.40" in body


def test_the_test_page_scores_the_message(client, owner, acme_bot, acme_rules):
    client.force_login(owner)
    response = client.get(reverse(TEST_PAGE), {"bot": acme_bot.pk, "text": "I'll see you in court"})
    assert response.context["result"]["assessment"].level == "urgent"
    assert "legal_threat" in response.content.decode()
    assert response.context["result"]["winner"] is None


def test_the_test_page_tries_an_out_of_scope_rule(client, owner, acme_bot):
    EscalationRuleFactory(
        bot=acme_bot, name="Unknown questions", trigger="category", categories="out_of_scope"
    )
    EscalationRuleFactory(
        bot=acme_bot, name="High stakes", trigger="category", categories="high_stakes"
    )
    client.force_login(owner)
    response = client.get(
        reverse(TEST_PAGE),
        {"bot": acme_bot.pk, "text": "Is there a student discount?", "category": "out_of_scope"},
    )
    checks = response.context["result"]["checks"]
    assert [(c.rule.name, c.fired) for c in checks] == [
        ("Unknown questions", True),
        ("High stakes", False),  # out_of_scope is a category of its own, not a subtype
    ]


def test_another_organizations_owner_cannot_test_acmes_bot(
    client, outsider, acme_bot, globex_bot, acme_rules
):
    client.force_login(outsider)
    response = client.get(reverse(TEST_PAGE), {"bot": acme_bot.pk, "text": "refund"})
    assert response.status_code == 200
    assert response.context["result"] is None
    assert "Select a valid choice" in response.content.decode()
    assert "Acme Support" not in response.content.decode()
    assert "Globex Helper" in response.content.decode()  # their own bot is offered


def test_the_test_page_is_for_managers_only(client, agent, acme_bot):
    client.force_login(agent)
    response = client.get(reverse(TEST_PAGE), {"bot": acme_bot.pk, "text": "refund"})
    assert response.status_code == 302
    assert reverse("admin:login") in response.url


def test_a_rule_missing_its_parameter_is_refused_in_the_form(client, owner, acme_bot):
    client.force_login(owner)
    response = client.post(
        reverse("admin:escalation_escalationrule_add"),
        {
            "bot": acme_bot.pk,
            "name": "Too frustrated",
            "enabled": "on",
            "position": 5,
            "trigger": "frustration",
            "mode": "handoff",
            "priority": "high",
            "queue": "tier1",
        },
    )
    assert response.status_code == 200
    assert "frustration at or above" in str(response.context["adminform"].form.errors["threshold"])


def test_the_log_is_read_only_and_shows_the_package(client, owner, carlas_chat):
    log = escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked")
    client.force_login(owner)
    url = reverse("admin:escalation_escalationlog_change", args=[log.pk])
    body = client.get(url).content.decode()
    assert "suggested_action" in body and 'name="_save"' not in body
    assert client.post(url, {"reason": "Changed"}).status_code == 403
    assert client.get(reverse("admin:escalation_escalationlog_add")).status_code == 403


def test_another_organizations_owner_sees_no_acme_logs(client, outsider, carlas_chat, gus):
    escalation_open(conversation=carlas_chat, trigger="human_request", reason="Carla asked")
    escalation_open(
        conversation=ConversationFactory(customer=gus), trigger="keywords", reason="Gus"
    )
    client.force_login(outsider)
    body = client.get(reverse("admin:escalation_escalationlog_changelist")).content.decode()
    assert "Gus" in body and "Carla" not in body


def _hours_form(bot, **overrides):
    data = {
        "bot": bot.pk,
        "enabled": "on",
        "timezone": "Europe/Berlin",
        "monday": "09:00-17:00",
        "tuesday": "09:00-17:00",
        "wednesday": "09:00-17:00",
        "thursday": "09:00-17:00",
        "friday": "09:00-12:00, 13:00-17:00",
        "saturday": "",
        "sunday": "",
        "holidays-TOTAL_FORMS": "1",
        "holidays-INITIAL_FORMS": "0",
        "holidays-0-date": "2026-12-24",
        "holidays-0-name": "Christmas Eve",
    }
    return {**data, **overrides}


def test_an_owner_sets_business_hours_with_a_holiday(client, owner, acme_bot):
    client.force_login(owner)
    response = client.post(reverse("admin:escalation_businesshours_add"), _hours_form(acme_bot))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert BusinessHours.objects.get(bot=acme_bot).friday == "09:00-12:00, 13:00-17:00"
    assert list(Holiday.objects.filter(bot=acme_bot).values_list("date", "name")) == [
        (date(2026, 12, 24), "Christmas Eve")
    ]


def test_bad_hours_and_time_zones_are_explained(client, owner, acme_bot):
    client.force_login(owner)
    response = client.post(
        reverse("admin:escalation_businesshours_add"),
        _hours_form(acme_bot, timezone="Berlin", monday="9-5"),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "not a time zone" in str(errors["timezone"])
    assert "not a span like 09:00-17:00" in str(errors["monday"])
    assert not BusinessHours.objects.exists()


def test_the_hours_page_lists_only_the_bots_own_holidays(client, owner, acme_bot, globex_bot):
    opening = BusinessHoursFactory(bot=acme_bot)
    HolidayFactory(bot=acme_bot, date=date(2026, 12, 25), name="Acme Christmas")
    HolidayFactory(bot=globex_bot, date=date(2026, 12, 26), name="Globex Boxing Day")
    client.force_login(owner)
    body = client.get(
        reverse("admin:escalation_businesshours_change", args=[opening.pk])
    ).content.decode()
    assert "Acme Christmas" in body and "Globex Boxing Day" not in body


def test_another_organizations_owner_cannot_open_acmes_hours(client, outsider, acme_bot):
    opening = BusinessHoursFactory(bot=acme_bot)
    client.force_login(outsider)
    url = reverse("admin:escalation_businesshours_change", args=[opening.pk])
    assert client.get(url).status_code == 302


def test_a_bot_added_in_admin_starts_with_the_default_rules(client, owner, acme):
    client.force_login(owner)
    response = client.post(
        reverse("admin:bots_bot_add"),
        {
            "organization": acme.pk,
            "name": "Night shift",
            "slug": "night-shift",
            "greeting": "Hi",
            "persona": "",
            "colour": "#123456",
            "allowed_origins": "",
            "embedding_model": Bot._meta.get_field("embedding_model").get_default(),
            "ask_if_answered": "on",
            "not_answered": "offer",
            "inactivity_minutes": 30,
            "reopen_hours": 24,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    bot = Bot.objects.get(name="Night shift")
    names = list(bot.escalation_rules.order_by("position").values_list("name", flat=True))
    assert names == [rule["name"] for rule in DEFAULT_RULES]
