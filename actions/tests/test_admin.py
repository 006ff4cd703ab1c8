"""Actions in admin: an organization's owners and admins configure and test their own bots'
actions; the secret header is write-only; another organization's action is out of reach."""

import json
import re

import pytest
from django.urls import reverse

from actions.models import Action
from actions.tests.conftest import VERA

pytestmark = pytest.mark.django_db

SECRET = "Bearer shop-secret-0451"


def _form(action: Action, **changes) -> dict:
    data = {
        "bot": action.bot_id,
        "name": action.name,
        "enabled": "on",
        "description": action.description,
        "input_schema": json.dumps(action.input_schema),
        "intent": action.intent,
        "method": action.method,
        "url_template": action.url_template,
        "secret_header_name": action.secret_header_name,
        "secret_header_value": "",
        "timeout_seconds": action.timeout_seconds,
        "audience": action.audience,
        "confirmation_template": action.confirmation_template,
        "limit_argument": action.limit_argument,
        "limit_max": "" if action.limit_max is None else str(action.limit_max),
        "result_template": action.result_template,
        "progress_text": action.progress_text,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def secret_lookup(lookup):
    lookup.secret_header_name = "Authorization"
    lookup.secret_header_value = SECRET
    lookup.save()
    return lookup


def test_an_admin_member_adds_an_action_with_a_secret_never_shown_again(
    client, admin_member, acme_bot
):
    client.force_login(admin_member)
    template = Action(
        bot=acme_bot,
        name="check_balance",
        description="The customer's balance.",
        input_schema={"type": "object", "properties": {}},
        url_template="https://shop.example/api/balance",
        secret_header_name="X-Api-Key",
        result_template="Your balance is {{ balance }}.",
        progress_text="Checking…",
    )
    response = client.post(
        reverse("admin:actions_action_add"), _form(template, secret_header_value="key-777")
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    action = Action.objects.get(name="check_balance")
    assert action.secret_header_value == "key-777"

    page = client.get(reverse("admin:actions_action_change", args=[action.pk])).content.decode()
    assert "key-777" not in page
    assert "Set (hidden)" in page
    assert "Test this action" in page


def test_saving_without_typing_the_secret_keeps_it_and_clearing_removes_it(
    client, owner, secret_lookup
):
    client.force_login(owner)
    url = reverse("admin:actions_action_change", args=[secret_lookup.pk])

    response = client.post(url, _form(secret_lookup, description="Changed."))
    assert response.status_code == 302
    secret_lookup.refresh_from_db()
    assert secret_lookup.description == "Changed."
    assert secret_lookup.secret_header_value == SECRET

    client.post(url, _form(secret_lookup, clear_secret="on"))
    secret_lookup.refresh_from_db()
    assert secret_lookup.secret_header_value == ""


def test_a_bad_schema_is_refused_with_the_reason(client, owner, lookup):
    client.force_login(owner)
    bad = {"type": "object", "properties": {"order_id": {"type": "strnig"}}}
    response = client.post(
        reverse("admin:actions_action_change", args=[lookup.pk]),
        _form(lookup, input_schema=json.dumps(bad), url_template="https://shop.example/x"),
    )
    assert response.status_code == 200
    assert "strnig" in response.content.decode()
    lookup.refresh_from_db()
    assert lookup.input_schema["properties"]["order_id"]["type"] == "string"


def test_the_test_button_runs_the_action_and_shows_the_outcome_never_the_secret(
    client, owner, secret_lookup, business
):
    business.answer("/orders/1234", {"id": "1234", "status": "shipped", "eta": "Friday"})
    client.force_login(owner)
    url = reverse("admin:actions_action_test", args=[secret_lookup.pk])

    page = client.get(url)
    assert page.status_code == 200
    assert "{&quot;order_id&quot;: &quot;&quot;}" in page.content.decode()

    response = client.post(url, {"arguments": '{"order_id": "1234"}', "user_id": VERA})
    body = response.content.decode()
    assert response.status_code == 200
    assert "Order 1234 is shipped, arriving Friday." in body
    assert '<span id="action-test-outcome">ok</span>' in body
    assert SECRET not in body and business.url not in body
    assert business.requests[0].headers["Authorization"] == SECRET
    assert business.requests[0].headers["X-Handoff-User-Id"] == VERA


def test_the_test_button_shows_why_without_a_customer_or_with_bad_json(
    client, admin_member, lookup, business
):
    client.force_login(admin_member)
    url = reverse("admin:actions_action_test", args=[lookup.pk])

    body = client.post(url, {"arguments": '{"order_id": "1234"}'}).content.decode()
    assert '<span id="action-test-outcome">unverified</span>' in body

    body = client.post(url, {"arguments": "{order_id: 1234"}).content.decode()
    assert "Not JSON" in body
    assert business.requests == []


def test_the_test_of_a_refund_stops_at_the_card_unless_confirmed(client, owner, refund, business):
    business.answer("/refunds", {"refund_id": "R-1", "order_id": "1235"}, status=201)
    client.force_login(owner)
    url = reverse("admin:actions_action_test", args=[refund.pk])
    arguments = '{"order_id": "1235", "amount": 20}'

    body = client.post(url, {"arguments": arguments, "user_id": VERA}).content.decode()
    assert "needs_confirmation" in body and "Refund $20.00 for order 1235." in body
    assert business.requests == []

    body = client.post(
        url, {"arguments": arguments, "user_id": VERA, "confirmed": "on"}
    ).content.decode()
    assert "Refund R-1 started for order 1235." in body

    # Each press is a new request: a fresh key each time, shown on the page.
    client.post(url, {"arguments": arguments, "user_id": VERA, "confirmed": "on"})
    keys = [r.headers["Idempotency-Key"] for r in business.requests]
    assert len(keys) == 2 and keys[0] != keys[1]
    assert all(re.fullmatch(r"test-[0-9a-f]{32}", key) for key in keys)
    assert f"<code>{keys[0]}</code>" in body


def test_another_organizations_admin_cannot_see_or_test_the_action(
    client, outsider, lookup, business
):
    client.force_login(outsider)

    listing = client.get(reverse("admin:actions_action_changelist")).content.decode()
    assert "lookup_order" not in listing
    change = client.get(reverse("admin:actions_action_change", args=[lookup.pk]))
    assert change.status_code == 302  # Django admin's "doesn't exist"
    test = reverse("admin:actions_action_test", args=[lookup.pk])
    assert client.get(test).status_code == 404
    assert (
        client.post(test, {"arguments": '{"order_id": "1234"}', "user_id": VERA}).status_code == 404
    )
    assert business.requests == []


def test_an_agent_cannot_use_the_actions_admin(client, agent, lookup):
    client.force_login(agent)
    response = client.get(reverse("admin:actions_action_test", args=[lookup.pk]))
    assert response.status_code == 302  # to the admin's login: agents have no admin
    assert "/login/" in response.url


def test_an_owner_cannot_move_an_action_to_another_organizations_bot(
    client, owner, lookup, globex_bot
):
    client.force_login(owner)
    client.post(
        reverse("admin:actions_action_change", args=[lookup.pk]),
        _form(lookup, bot=globex_bot.pk),
    )
    lookup.refresh_from_db()
    assert lookup.bot_id != globex_bot.pk


def test_the_bots_action_calls_per_message_is_set_in_the_bot_admin(client, owner, acme_bot):
    client.force_login(owner)
    url = reverse("admin:bots_bot_change", args=[acme_bot.pk])
    form = {
        "organization": acme_bot.organization_id,
        "name": acme_bot.name,
        "slug": acme_bot.slug,
        "greeting": acme_bot.greeting,
        "persona": acme_bot.persona,
        "colour": acme_bot.colour,
        "allowed_origins": "",
        "embedding_model": acme_bot.embedding_model,
        "not_answered": acme_bot.not_answered,
        "inactivity_minutes": acme_bot.inactivity_minutes,
        "reopen_hours": acme_bot.reopen_hours,
    }
    assert "action_calls_per_turn" in client.get(url).content.decode()

    response = client.post(url, {**form, "action_calls_per_turn": 6})
    assert response.status_code == 200  # refused: at most 5
    assert client.post(url, {**form, "action_calls_per_turn": 5}).status_code == 302
    acme_bot.refresh_from_db()
    assert acme_bot.action_calls_per_turn == 5
    # Posted without the field, the bot keeps its value.
    assert client.post(url, form).status_code == 302
    acme_bot.refresh_from_db()
    assert acme_bot.action_calls_per_turn == 5
