"""Actions in the audit log: who created, changed or deleted an action, with before → after,
and that its secret header changed, never the secret."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from actions.models import Action
from actions.tests.factories import RefundActionFactory
from audit.models import ActionEvent
from audit.tests.conftest import IP

pytestmark = pytest.mark.django_db

SECRET = "sk-shop-8812"


def _form(action: Action, **changes) -> dict:
    data = {
        "bot": action.bot_id,
        "name": action.name,
        "enabled": "on",
        "description": action.description,
        "input_schema": json.dumps(action.input_schema),
        "method": action.method,
        "url_template": action.url_template,
        "secret_header_name": action.secret_header_name,
        "timeout_seconds": action.timeout_seconds,
        "audience": action.audience,
        "requires_confirmation": "on",
        "confirmation_template": action.confirmation_template,
        "limit_argument": action.limit_argument,
        "limit_max": str(action.limit_max),
        "result_template": action.result_template,
        "progress_text": action.progress_text,
        **changes,
    }
    return data


def test_it_records_an_action_change_in_admin_with_before_and_after(
    client, admin_member, acme_bot, audit_rows
):
    action = RefundActionFactory(bot=acme_bot, limit_max=50)
    client.force_login(admin_member)

    response = client.post(
        reverse("admin:actions_action_change", args=[action.pk]),
        _form(action, limit_max="75", url_template="https://shop.example/api/refunds?k=tok-1"),
        REMOTE_ADDR=IP,
    )

    assert response.status_code == 302
    [row] = audit_rows("action.changed")
    assert (row.actor, row.ip) == ("Ian", IP)
    assert row.line == (
        "Ian changed action 'start_refund' of bot 'Acme Support' "
        "url template: https://shop.example/api/refunds → https://shop.example/api/refunds?…; "
        "limit max: 50.00 → 75.00"
    )
    assert audit_rows("action.created")  # the factory's insert
    assert "tok-1" not in str(audit_rows())


def test_a_secret_change_is_recorded_without_the_secret(client, owner, acme_bot, audit_rows):
    action = RefundActionFactory(bot=acme_bot, limit_max=50, secret_header_name="X-Api-Key")
    client.force_login(owner)

    response = client.post(
        reverse("admin:actions_action_change", args=[action.pk]),
        _form(action, secret_header_value=SECRET),
        REMOTE_ADDR=IP,
    )

    assert response.status_code == 302
    [row] = audit_rows("action.secret_changed")
    assert (
        row.text == "Ada changed the secret header of action 'start_refund' of bot 'Acme Support'"
    )
    assert not audit_rows("action.changed")
    stored = json.dumps(list(ActionEvent.objects.values()), default=str)
    assert SECRET not in stored


def test_a_deleted_action_is_recorded_and_other_organizations_do_not_see_it(
    acme_bot, globex_bot, audit_rows
):
    RefundActionFactory(bot=globex_bot, limit_max=50)
    action = RefundActionFactory(bot=acme_bot, limit_max=50)
    action.delete()

    assert [r.text for r in audit_rows(kind="actions")] == [
        "System deleted action 'start_refund' of bot 'Acme Support'",
        "System created action 'start_refund' of bot 'Acme Support'",
    ]


def test_it_records_a_change_of_the_bots_action_calls_per_message(
    client, owner, acme_bot, audit_rows
):
    acme_bot.action_calls_per_turn = 5
    acme_bot.save(update_fields=["action_calls_per_turn"])

    [row] = audit_rows("bot.changed")
    assert row.line == "System changed bot 'Acme Support' action calls per turn: 3 → 5"
