"""action_run against a local server standing in for the business: every control in order,
and every kind of endpoint trouble ending in honest text, never an invented result."""

import json

import pytest

from actions.services import (
    FAILED_TEXT,
    MAX_RESPONSE_BYTES,
    NOT_FOUND_TEXT,
    Outcome,
    action_run,
)
from actions.signing import signature_valid
from actions.tests.conftest import VERA

pytestmark = pytest.mark.django_db

SHIPPED = {"id": "1234", "status": "shipped", "eta": "Thursday"}


def test_it_answers_from_the_response_through_the_template(lookup, business):
    business.answer("/orders/1234", SHIPPED)

    result = action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA)

    assert result.outcome == Outcome.OK
    assert result.text == "Order 1234 is shipped, arriving Thursday."
    assert result.status == 200 and result.error == ""
    assert not result.offer_person
    assert [r.path for r in business.requests] == ["/orders/1234"]


def test_it_signs_the_customer_id_so_the_business_can_trust_it(lookup, business, acme_bot):
    business.answer("/orders/1234", SHIPPED)

    action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA)

    headers = business.requests[0].headers
    assert headers["X-Handoff-User-Id"] == VERA
    assert headers["X-Handoff-Signature"].startswith("sha256=")
    assert signature_valid(
        secret=acme_bot.secret_key,
        timestamp=headers["X-Handoff-Timestamp"],
        user_id=VERA,
        body=b"",
        given=headers["X-Handoff-Signature"],
    )
    # Another customer's id under the same signature does not verify: it cannot be swapped.
    assert not signature_valid(
        secret=acme_bot.secret_key,
        timestamp=headers["X-Handoff-Timestamp"],
        user_id="someone-else",
        body=b"",
        given=headers["X-Handoff-Signature"],
    )


def test_it_signs_a_posts_body_and_sends_the_secret_header(refund, business, acme_bot):
    refund.secret_header_name = "X-Api-Key"
    refund.secret_header_value = "shop-secret-123"
    refund.save()
    business.answer("/refunds", {"refund_id": "R-1", "order_id": "1235"}, status=201)

    result = action_run(
        action=refund, arguments={"order_id": "1235", "amount": 30}, user_id=VERA, confirmed=True
    )

    assert result.outcome == Outcome.OK, result.error
    seen = business.requests[0]
    assert seen.method == "POST"
    assert json.loads(seen.body) == {"order_id": "1235", "amount": 30}
    assert seen.headers["X-Api-Key"] == "shop-secret-123"
    assert signature_valid(
        secret=acme_bot.secret_key,
        timestamp=seen.headers["X-Handoff-Timestamp"],
        user_id=VERA,
        body=seen.body,
        given=seen.headers["X-Handoff-Signature"],
    )
    assert "shop-secret-123" not in json.dumps(result.record())


def test_an_idempotency_key_is_sent_and_signed(refund, business, acme_bot):
    business.answer("/refunds", {"refund_id": "R-1", "order_id": "1235"}, status=201)

    result = action_run(
        action=refund,
        arguments={"order_id": "1235", "amount": 30},
        user_id=VERA,
        confirmed=True,
        idempotency_key="call-17",
    )

    assert result.outcome == Outcome.OK, result.error
    seen = business.requests[0]
    assert seen.headers["Idempotency-Key"] == "call-17"

    def verifies(key):
        return signature_valid(
            secret=acme_bot.secret_key,
            timestamp=seen.headers["X-Handoff-Timestamp"],
            user_id=VERA,
            body=seen.body,
            given=seen.headers["X-Handoff-Signature"],
            idempotency_key=key,
        )

    assert verifies("call-17")
    # Changed or dropped on the way, the key no longer matches the signature.
    assert not verifies("call-18")
    assert not verifies("")


def test_without_a_key_no_header_is_sent_and_the_first_format_verifies(lookup, business, acme_bot):
    business.answer("/orders/1234", SHIPPED)

    action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA)

    headers = business.requests[0].headers
    assert "Idempotency-Key" not in headers
    assert signature_valid(
        secret=acme_bot.secret_key,
        timestamp=headers["X-Handoff-Timestamp"],
        user_id=VERA,
        body=b"",
        given=headers["X-Handoff-Signature"],
    )


def test_a_key_that_may_not_be_sent_is_refused_before_anything_runs(lookup, business):
    with pytest.raises(ValueError, match="idempotency key"):
        action_run(
            action=lookup, arguments={"order_id": "1234"}, user_id=VERA, idempotency_key="a.b"
        )
    assert business.requests == []


@pytest.mark.parametrize(
    ("arguments", "error", "text"),
    [
        ({}, "'order_id' is a required property", "What's your order number?"),
        ({"order_id": "12"}, "order_id: '12' does not match", "valid order number"),
        ({"order_id": 1234}, "order_id: 1234 is not of type 'string'", "valid order number"),
        ({"order_id": "1234", "admin": True}, "Additional properties", "couldn't use"),
    ],
)
def test_it_refuses_arguments_the_schema_does_not_allow(lookup, business, arguments, error, text):
    result = action_run(action=lookup, arguments=arguments, user_id=VERA)

    assert result.outcome == Outcome.INVALID
    assert result.error.startswith("schema: ") and error in result.error
    assert text in result.text
    assert business.requests == []


def test_it_asks_an_unverified_customer_to_sign_in_and_calls_nothing(lookup, business):
    result = action_run(action=lookup, arguments={"order_id": "1234"}, user_id=None)

    assert result.outcome == Outcome.UNVERIFIED
    assert "sign in" in result.text
    assert business.requests == []


def test_an_action_for_anyone_runs_without_a_customer_id(lookup, business, acme_bot):
    lookup.audience = lookup.Audience.ANYONE
    lookup.save()
    business.answer("/orders/1234", SHIPPED)

    result = action_run(action=lookup, arguments={"order_id": "1234"}, user_id=None)

    assert result.outcome == Outcome.OK
    headers = business.requests[0].headers
    assert "X-Handoff-User-Id" not in headers
    assert signature_valid(
        secret=acme_bot.secret_key,
        timestamp=headers["X-Handoff-Timestamp"],
        user_id="",
        body=b"",
        given=headers["X-Handoff-Signature"],
    )


def test_another_customers_order_is_not_found_and_shows_no_data(lookup, business):
    # The business answers only the signed customer's orders: 4321 is someone else's.
    business.answer("/orders/4321", {"error": "no such order", "owner": "someone"}, status=404)

    result = action_run(action=lookup, arguments={"order_id": "4321"}, user_id=VERA)

    assert result.outcome == Outcome.NOT_FOUND
    assert result.text == NOT_FOUND_TEXT
    assert "someone" not in result.text
    assert result.status == 404


def test_it_asks_for_confirmation_first_then_runs_once_confirmed(refund, business):
    business.answer("/refunds", {"refund_id": "R-9", "order_id": "1235"}, status=201)

    first = action_run(action=refund, arguments={"order_id": "1235", "amount": 30}, user_id=VERA)

    assert first.outcome == Outcome.NEEDS_CONFIRMATION
    assert first.confirmation == "Refund $30.00 for order 1235."
    assert business.requests == []

    second = action_run(
        action=refund, arguments={"order_id": "1235", "amount": 30}, user_id=VERA, confirmed=True
    )
    assert second.outcome == Outcome.OK
    assert second.text == "Refund R-9 started for order 1235."
    assert len(business.requests) == 1


def test_over_the_limit_it_hands_off_and_makes_no_call(refund, business):
    result = action_run(
        action=refund, arguments={"order_id": "1235", "amount": 80}, user_id=VERA, confirmed=True
    )

    assert result.outcome == Outcome.HANDOFF
    assert result.offer_person
    assert result.handoff_reason == (
        "Refund $80.00 for order 1235: amount 80.00 is above the limit of 50.00"
    )
    assert business.requests == []


def test_at_the_limit_it_still_runs(refund, business):
    business.answer("/refunds", {"refund_id": "R-5", "order_id": "1235"}, status=201)

    result = action_run(
        action=refund, arguments={"order_id": "1235", "amount": 50}, user_id=VERA, confirmed=True
    )

    assert result.outcome == Outcome.OK


def test_a_timeout_fails_honestly_and_offers_a_person(lookup, business):
    lookup.timeout_seconds = 1
    lookup.save()
    business.answer("/orders/1234", SHIPPED, delay=2.5)

    result = action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA)

    assert result.outcome == Outcome.FAILED
    assert result.error == "timeout"
    assert result.text == FAILED_TEXT
    assert result.offer_person
    assert 900 < result.endpoint_ms < 2400


def test_a_server_error_fails_honestly(lookup, business):
    business.answer("/orders/1234", {"error": "boom"}, status=500)

    result = action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA)

    assert result.outcome == Outcome.FAILED
    assert result.error == "http_500" and result.status == 500
    assert result.text == FAILED_TEXT


def test_a_response_missing_what_the_template_needs_fails_instead_of_a_blank(lookup, business):
    business.answer("/orders/1234", {"id": "1234", "status": "shipped"})  # no eta

    result = action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA)

    assert result.outcome == Outcome.FAILED
    assert result.error.startswith("template: ") and "eta" in result.error
    assert result.text == FAILED_TEXT


def test_a_response_that_is_not_json_fails(lookup, business):
    business.answer("/orders/1234", raw=b"<html>maintenance</html>")

    result = action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA)

    assert (result.outcome, result.error) == (Outcome.FAILED, "response: not JSON")


def test_a_response_over_the_size_cap_is_not_read(lookup, business):
    business.answer("/orders/1234", raw=b'"' + b"x" * MAX_RESPONSE_BYTES + b'"')

    result = action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA)

    assert result.outcome == Outcome.FAILED
    assert result.error == "response over 256 KB"


def test_a_redirect_is_not_followed(lookup, business):
    business.answer("/orders/1234", {}, status=302)

    result = action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA)

    assert (result.outcome, result.error) == (Outcome.FAILED, "http_302")
    assert len(business.requests) == 1


def test_a_url_on_a_private_network_is_refused_unless_allowed(lookup, business, settings):
    settings.ACTIONS_ALLOW_PRIVATE_NETWORKS = False
    business.answer("/orders/1234", SHIPPED)

    refused = action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA)

    assert refused.outcome == Outcome.FAILED
    assert refused.error.startswith("address refused: ") and "private network" in refused.error
    assert business.requests == []

    settings.ACTIONS_ALLOW_PRIVATE_NETWORKS = True
    allowed = action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA)
    assert allowed.outcome == Outcome.OK


def test_an_argument_cannot_change_the_path(lookup, business):
    lookup.input_schema = {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    }
    lookup.save()

    action_run(action=lookup, arguments={"order_id": "../admin?x=1"}, user_id=VERA)

    assert business.requests[0].path == "/orders/..%2Fadmin%3Fx%3D1"


def test_a_gets_other_arguments_go_in_the_query(lookup, business):
    lookup.input_schema = {
        "type": "object",
        "properties": {"order_id": {"type": "string"}, "detail": {"type": "boolean"}},
        "required": ["order_id"],
    }
    lookup.save()
    business.answer("/orders/1234", SHIPPED)

    action_run(action=lookup, arguments={"order_id": "1234", "detail": True}, user_id=VERA)

    assert business.requests[0].query == {"detail": ["true"]}


def test_the_record_holds_no_url_and_no_secret(lookup, business):
    lookup.url_template = business.url + "/orders/{order_id}?token=url-token-77"
    lookup.secret_header_name = "Authorization"
    lookup.secret_header_value = "Bearer very-secret-99"
    lookup.save()
    business.answer("/orders/1234", SHIPPED)

    result = action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA)

    record = result.record()
    assert set(record) == {
        "name",
        "arguments",
        "outcome",
        "status",
        "error",
        "endpoint_ms",
        "own_ms",
    }
    assert record["name"] == "lookup_order" and record["outcome"] == "ok"
    dumped = json.dumps(record)
    assert "very-secret-99" not in dumped and "url-token-77" not in dumped
    assert "127.0.0.1" not in dumped
    assert business.requests[0].headers["Authorization"] == "Bearer very-secret-99"


def test_a_template_cannot_reach_python_internals(lookup, business):
    lookup.result_template = "{{ status.__class__.__mro__ }}"
    lookup.save()
    business.answer("/orders/1234", SHIPPED)

    result = action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA)

    assert result.outcome == Outcome.FAILED
    assert result.error.startswith("template: ")


def test_a_template_error_of_any_kind_fails_honestly(lookup, business):
    lookup.result_template = "{{ '%.2f'|format(status) }}"  # a string where a number goes
    lookup.save()
    business.answer("/orders/1234", SHIPPED)

    result = action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA)

    assert result.outcome == Outcome.FAILED
    assert result.error.startswith("template: TypeError")


def test_deeply_nested_json_fails_instead_of_crashing(lookup, business):
    business.answer("/orders/1234", raw=b"[" * 100_000 + b"]" * 100_000)

    result = action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA)

    assert (result.outcome, result.error) == (Outcome.FAILED, "response: not JSON")


def test_the_demo_shops_allowance_covers_its_path_only(lookup, business, settings):
    settings.ACTIONS_ALLOW_PRIVATE_NETWORKS = False
    settings.DEMO_SHOP = True
    settings.SITE_URL = business.url
    business.answer("/admin/", {"id": "1", "status": "x", "eta": "y"})
    business.answer("/demo/shop/api/k/orders/1234", SHIPPED)

    lookup.url_template = business.url + "/demo/shop/api/../../admin/?{order_id}"
    escaped = action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA)
    assert escaped.error.startswith("address refused")

    lookup.url_template = business.url + "/demo/shop/api/k/orders/{order_id}"
    assert action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA).outcome == "ok"

    settings.DEMO_SHOP = False
    refused = action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA)
    assert refused.error.startswith("address refused")
    assert [r.path for r in business.requests] == ["/demo/shop/api/k/orders/1234"]


def test_a_schema_referring_elsewhere_is_never_fetched_and_fails(lookup, business):
    lookup.input_schema = {
        "type": "object",
        "properties": {"order_id": {"$ref": business.url + "/schema.json"}},
    }
    lookup.save()

    result = action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA)

    assert result.outcome == Outcome.FAILED
    assert result.error.startswith("schema unusable: ")
    assert business.requests == []


def test_a_reference_inside_the_schema_is_followed(lookup, business):
    lookup.input_schema = {
        "type": "object",
        "$defs": {"order": {"type": "string", "pattern": "^\\d{4}$"}},
        "properties": {"order_id": {"$ref": "#/$defs/order"}},
        "required": ["order_id"],
    }
    lookup.save()
    business.answer("/orders/1234", SHIPPED)

    assert action_run(action=lookup, arguments={"order_id": "1234"}, user_id=VERA).outcome == "ok"
    bad = action_run(action=lookup, arguments={"order_id": "12"}, user_id=VERA)
    assert bad.outcome == Outcome.INVALID
