"""One test per kind of change: each is recorded with who, from which address, and before →
after, whether it was made on the product's pages, in Django admin, or by the worker."""

from __future__ import annotations

import pghistory
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from audit.models import BotKeyEvent, ConsoleEvent, KnowledgeSourceEvent
from audit.tests.conftest import IP
from bots.models import Invitation, Membership
from bots.tests.factories import UserFactory
from conversations.tests.factories import MessageFactory
from escalation import services as escalation_services
from escalation.models import EscalationRule, Holiday
from escalation.services import escalation_open
from escalation.tests.factories import EscalationRuleFactory
from knowledge.models import KnowledgeSource
from knowledge.tests.conftest import FAQ_CSV

pytestmark = pytest.mark.django_db


def _bot_form(bot, **changes):
    return {
        "organization": bot.organization_id,
        "name": bot.name,
        "slug": bot.slug,
        "greeting": bot.greeting,
        "persona": bot.persona,
        "colour": bot.colour,
        "allowed_origins": ",".join(bot.allowed_origins),
        "embedding_model": bot.embedding_model,
        "ask_if_answered": "on",
        "help_pages": "on",
        "not_answered": bot.not_answered,
        "inactivity_minutes": bot.inactivity_minutes,
        "reopen_hours": bot.reopen_hours,
        **changes,
    }


def test_it_records_a_bot_settings_change_in_admin(client, admin_member, acme_bot, audit_rows):
    client.force_login(admin_member)
    response = client.post(
        reverse("admin:bots_bot_change", args=[acme_bot.pk]),
        _bot_form(acme_bot, greeting="Hello there", not_answered="handoff"),
        REMOTE_ADDR=IP,
    )
    assert response.status_code == 302
    [row] = audit_rows("bot.changed")
    assert (row.actor, row.ip) == ("Ian", IP)
    assert row.line == (
        "Ian changed bot 'Acme Support' greeting: Hi! I'm here to help. What can I do for "
        "you? → Hello there; not answered: offer → handoff"
    )


def test_it_records_an_escalation_rule_change_with_before_and_after(
    client, admin_member, acme_bot, audit_rows
):
    rule = EscalationRuleFactory(
        bot=acme_bot, name="Billing", trigger="keywords", phrases="invoice", mode="offer"
    )
    client.force_login(admin_member)
    response = client.post(
        reverse("admin:escalation_escalationrule_change", args=[rule.pk]),
        {
            "bot": acme_bot.pk,
            "name": "Billing",
            "enabled": "on",
            "position": rule.position,
            "trigger": "keywords",
            "phrases": "invoice",
            "mode": "handoff",
            "priority": rule.priority,
            "queue": rule.queue,
        },
        REMOTE_ADDR=IP,
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    [row] = audit_rows("rule.changed")
    assert row.line == "Ian changed rule 'Billing' of bot 'Acme Support' mode: offer → handoff"
    assert row.ip == IP
    client.post(reverse("admin:escalation_escalationrule_delete", args=[rule.pk]), {"post": "yes"})
    assert not EscalationRule.objects.filter(pk=rule.pk).exists()
    [row] = audit_rows("rule.deleted")
    assert row.line == "Ian deleted rule 'Billing' of bot 'Acme Support'"


def test_it_catches_a_queryset_update_that_no_signal_sees(acme_bot, owner, audit_rows):
    rule = EscalationRuleFactory(bot=acme_bot, name="Angry", trigger="sentiment", level="angry")
    with pghistory.context(user=owner.pk, name="Ada", ip=IP):
        EscalationRule.objects.filter(pk=rule.pk).update(enabled=False)
    [row] = audit_rows("rule.changed")
    assert row.line == "Ada changed rule 'Angry' of bot 'Acme Support' enabled: yes → no"


def _hours_form(bot, **overrides):
    data = {
        "bot": bot.pk,
        "enabled": "on",
        "timezone": "Europe/Berlin",
        **{day: "09:00-17:00" for day in ("monday", "tuesday", "wednesday", "thursday", "friday")},
        "saturday": "",
        "sunday": "",
        "holidays-TOTAL_FORMS": "1",
        "holidays-INITIAL_FORMS": "0",
        "holidays-0-date": "2026-12-24",
        "holidays-0-name": "Christmas Eve",
    }
    return {**data, **overrides}


def test_it_records_business_hours_and_holidays(client, owner, acme_bot, audit_rows):
    client.force_login(owner)
    response = client.post(
        reverse("admin:escalation_businesshours_add"), _hours_form(acme_bot), REMOTE_ADDR=IP
    )
    assert response.status_code == 302
    [hours] = audit_rows("hours.created")
    assert hours.line == "Ada set the business hours of bot 'Acme Support'"
    [holiday] = audit_rows("holiday.added")
    assert holiday.line == "Ada added holiday 2026-12-24 (Christmas Eve) of bot 'Acme Support'"
    assert (hours.ip, holiday.ip) == (IP, IP)
    hours_row = acme_bot.business_hours
    holiday_row = Holiday.objects.get(bot=acme_bot)
    response = client.post(
        reverse("admin:escalation_businesshours_change", args=[hours_row.pk]),
        _hours_form(
            acme_bot,
            saturday="10:00-14:00",
            **{
                "holidays-INITIAL_FORMS": "1",
                "holidays-0-id": holiday_row.pk,
                "holidays-0-bot": acme_bot.pk,
                "holidays-0-DELETE": "on",
            },
        ),
        REMOTE_ADDR=IP,
    )
    assert response.status_code == 302
    [changed] = audit_rows("hours.changed")
    assert changed.line == (
        "Ada changed the business hours of bot 'Acme Support' saturday: — → 10:00-14:00"
    )
    [removed] = audit_rows("holiday.removed")
    assert removed.text == "Ada removed holiday 2026-12-24 (Christmas Eve) from bot 'Acme Support'"


def _knowledge(name, bot, *args):
    return reverse(name, args=[bot.organization.slug, bot.slug, *args])


def test_it_records_knowledge_sources_added_replaced_resynced_removed(
    client, admin_member, acme_bot, audit_rows
):
    client.force_login(admin_member)
    upload = SimpleUploadedFile("faq.csv", FAQ_CSV, content_type="text/csv")
    client.post(_knowledge("knowledge_upload", acme_bot), {"file": upload}, REMOTE_ADDR=IP)
    source = KnowledgeSource.objects.get(bot=acme_bot)
    [added] = audit_rows("source.added")
    assert (added.line, added.ip) == (
        "Ian added knowledge source 'faq.csv' of bot 'Acme Support'",
        IP,
    )

    new = SimpleUploadedFile("faq-v2.csv", FAQ_CSV + b"\n", content_type="text/csv")
    client.post(_knowledge("knowledge_replace", acme_bot, source.pk), {"file": new}, REMOTE_ADDR=IP)
    [replaced] = audit_rows("source.replaced")
    assert replaced.text == (
        "Ian replaced knowledge source 'faq.csv' of bot 'Acme Support' with faq-v2.csv"
    )

    # The worker failing it is no one's change; asking for a re-sync is.
    KnowledgeSource.objects.filter(pk=source.pk).update(status="failed")
    client.post(_knowledge("knowledge_resync", acme_bot, source.pk), REMOTE_ADDR=IP)
    # The schedule queueing it again, in a transaction of its own with no request's context
    # (this test runs in one transaction, where the last request's context would linger).
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('pghistory.context_metadata', '', true)")
    KnowledgeSource.objects.filter(pk=source.pk).update(status="failed")
    KnowledgeSource.objects.filter(pk=source.pk).update(status="pending")
    [resynced] = audit_rows("source.resynced")
    assert resynced.text == "Ian re-synced knowledge source 'faq.csv' of bot 'Acme Support'"

    client.post(_knowledge("knowledge_delete", acme_bot, source.pk), REMOTE_ADDR=IP)
    [removed] = audit_rows("source.removed")
    assert (removed.actor, removed.ip) == ("Ian", IP)
    assert KnowledgeSourceEvent.objects.filter(pgh_obj_id=source.pk).count() == 4


def test_it_records_members_invited_role_changed_and_removed(client, owner, agent, audit_rows):
    client.force_login(owner)
    client.post(
        reverse("invitation_create", args=["acme"]),
        {"email": "nia@acme.example", "name": "Nia", "role": "agent"},
        REMOTE_ADDR=IP,
    )
    assert Invitation.objects.filter(email="nia@acme.example").exists()
    [invited] = audit_rows("member.invited")
    assert (invited.line, invited.ip) == ("Ada invited nia@acme.example as agent", IP)

    # Nia, who has an account, follows the link and accepts.
    nia = UserFactory(email="nia@acme.example", first_name="Nia")
    client.force_login(nia)
    token = Invitation.objects.get(email="nia@acme.example").token
    client.post(reverse("invitation_accept", args=[token]), REMOTE_ADDR="198.51.100.4")
    [joined] = audit_rows("member.added", actor=nia.pk)
    assert (joined.line, joined.ip) == ("Nia joined as agent", "198.51.100.4")

    client.force_login(owner)
    member = Membership.objects.get(user=agent)
    client.post(
        reverse("member_set_role", args=["acme", member.pk]), {"role": "admin"}, REMOTE_ADDR=IP
    )
    [changed] = audit_rows("member.role_changed")
    assert changed.line == "Ada changed the role of Sam role: agent → admin"

    client.post(reverse("member_remove", args=["acme", member.pk]), REMOTE_ADDR=IP)
    [removed] = audit_rows("member.removed")
    assert (removed.line, removed.ip) == ("Ada removed Sam (admin)", IP)


def test_it_records_the_secret_key_revealed_and_rotated_never_the_key(
    client, admin_member, acme_bot, audit_rows
):
    client.force_login(admin_member)
    url = reverse("bot_secret_reveal", args=["acme", acme_bot.slug])
    assert client.post(url, REMOTE_ADDR=IP).status_code == 200
    [revealed] = audit_rows("secret.revealed")
    assert (revealed.line, revealed.ip) == ("Ian revealed the secret key of bot 'Acme Support'", IP)
    rotate = reverse("bot_secret_rotate", args=["acme", acme_bot.slug])
    assert client.post(rotate, REMOTE_ADDR=IP).status_code == 200
    [rotated] = audit_rows("secret.rotated")
    assert (rotated.line, rotated.ip) == ("Ian rotated the secret key of bot 'Acme Support'", IP)
    stored = list(BotKeyEvent.objects.values())
    assert stored and not any("sk_" in str(value) for row in stored for value in row.values())


def test_it_records_the_chat_webhook_set(client, owner, acme, audit_rows):
    client.force_login(owner)
    response = client.post(
        reverse("admin:bots_organization_change", args=[acme.pk]),
        {"name": "Acme", "slug": "acme", "webhook_url": "https://hooks.slack.com/services/T0/B0/x"},
        REMOTE_ADDR=IP,
    )
    assert response.status_code == 302
    [row] = audit_rows("webhook.set")
    # The URL is a credential: only its host is shown.
    assert row.line == "Ada set the chat webhook webhook url: — → https://hooks.slack.com/…"
    assert row.ip == IP


@pytest.fixture
def waiting(carlas_chat):
    MessageFactory(conversation=carlas_chat, text="My order never came")
    escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked for a person")
    carlas_chat.refresh_from_db()
    return carlas_chat


def _console(name, conversation):
    return reverse(name, args=["acme", conversation.pk])


def test_it_records_console_actions_with_before_and_after(
    client, agent, admin_member, waiting, audit_rows
):
    client.force_login(agent)
    post = lambda name, **data: client.post(_console(name, waiting), data, REMOTE_ADDR=IP)  # noqa: E731
    assert post("console_claim").status_code == 200
    assert post("console_reply", text="It ships today.").status_code == 200
    assert post("console_note", text="Checked with the warehouse").status_code == 200
    assert post("console_transfer", to="queue:tier2").status_code == 200
    assert post("console_claim").status_code == 200
    assert post("console_return").status_code == 200
    assert post("console_take_over").status_code == 200
    lines = [row.line for row in audit_rows(actor=agent.pk)]
    n = waiting.pk
    assert lines == [
        f"Sam took over conversation #{n} from the bot status: ai → active; "
        "assigned agent: — → Sam",
        f"Sam returned conversation #{n} to the bot status: active → ai; assigned agent: Sam → —",
        f"Sam claimed conversation #{n} status: waiting → active; assigned agent: — → Sam",
        f"Sam transferred conversation #{n} status: awaiting_customer → waiting; "
        "assigned agent: Sam → —; "
        "queue: tier1 → tier2",
        f"Sam added a note to conversation #{n}: “Checked with the warehouse”",
        f"Sam replied in conversation #{n}: “It ships today.” status: active → awaiting_customer",
        f"Sam claimed conversation #{n} status: waiting → active; assigned agent: — → Sam",
    ]
    assert {row.ip for row in audit_rows(actor=agent.pk)} == {IP}
    # A refused action is not recorded: the agent already has it.
    before = ConsoleEvent.objects.count()
    client.force_login(admin_member)
    assert post("console_claim").status_code == 409
    assert ConsoleEvent.objects.count() == before


def test_it_records_a_resolve_with_the_bot_should_have_handled_this_mark(
    agent, waiting, audit_rows
):
    escalation_services.conversation_claim(conversation=waiting, agent=agent)

    with pghistory.context(user=agent.pk, name="Sam", ip=IP):
        escalation_services.console_act(
            conversation=waiting,
            agent=agent,
            action=escalation_services.conversation_resolve,
            bot_missed=True,
            note="Shipping times are public",
        )
    [row] = audit_rows("console.resolve")
    assert row.text == (
        f"Sam resolved conversation #{waiting.pk}, marked “the bot should have handled this” "
        "(“Shipping times are public”)"
    )
    assert "status: active → resolved" in row.line and "bot missed: no → yes" in row.line
    assert row.ip == IP


def test_a_change_the_worker_makes_is_by_the_system(acme_bot, audit_rows):
    EscalationRuleFactory(bot=acme_bot, name="Nightly")
    [row] = audit_rows("rule.created")
    assert (row.actor, row.ip) == ("System", "")


def test_it_records_a_role_changed_in_django_admin(client, owner, agent, audit_rows):
    member = Membership.objects.get(user=agent)
    client.force_login(owner)
    response = client.post(
        reverse("admin:bots_membership_change", args=[member.pk]),
        {"role": "admin", "availability": "offline", "capacity": 5, "queues": "tier1"},
        REMOTE_ADDR=IP,
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    [row] = audit_rows("member.role_changed")
    assert (row.line, row.ip) == ("Ada changed the role of Sam role: agent → admin", IP)
