"""The demo shop (/demo/shop/api/): a business's server done right. It trusts only a signed
customer id, answers only that customer's orders, and is off unless DEMO_SHOP."""

import json
import re
import time

import pytest

from actions.demo import DEMO_CUSTOMER
from actions.services import Outcome, action_put, action_run
from actions.signing import signed_headers
from bots.tests.factories import BotFactory
from config.management.commands.seed_demo import demo_actions

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def shop_on(settings):
    settings.DEMO_SHOP = True


def _get(client, bot, order_id, *, user_id=DEMO_CUSTOMER, secret=None):
    headers = signed_headers(secret=secret or bot.secret_key, user_id=user_id, body=b"")
    return client.get(
        f"/demo/shop/api/{bot.public_key}/orders/{order_id}",
        headers=headers,
    )


def test_it_answers_the_signed_customers_own_order(client, acme_bot):
    response = _get(client, acme_bot, "1234")

    assert response.status_code == 200
    order = response.json()
    assert order["id"] == "1234" and order["status"] == "shipped" and order["eta"]


def test_another_customers_order_is_not_found(client, acme_bot):
    response = _get(client, acme_bot, "4321")

    assert response.status_code == 404
    assert response.json() == {"error": "no such order"}


def test_a_bad_signature_or_no_customer_is_refused(client, acme_bot, globex_bot):
    assert _get(client, acme_bot, "1234", secret=globex_bot.secret_key).status_code == 401
    assert _get(client, acme_bot, "1234", user_id=None).status_code == 401
    # Unsigned, claiming to be the demo customer.
    response = client.get(
        f"/demo/shop/api/{acme_bot.public_key}/orders/1234",
        headers={"X-Handoff-User-Id": DEMO_CUSTOMER},
    )
    assert response.status_code == 401


def test_an_old_signature_is_refused(client, acme_bot, monkeypatch):
    headers = signed_headers(secret=acme_bot.secret_key, user_id=DEMO_CUSTOMER, body=b"")
    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)
    response = client.get(f"/demo/shop/api/{acme_bot.public_key}/orders/1234", headers=headers)
    assert response.status_code == 401


def test_it_is_off_unless_demo_shop(client, acme_bot, settings):
    settings.DEMO_SHOP = False
    assert _get(client, acme_bot, "1234").status_code == 404


def test_a_refund_is_started_on_an_own_order_within_its_total(client, acme_bot):
    def post(data):
        body = json.dumps(data).encode()
        headers = signed_headers(secret=acme_bot.secret_key, user_id=DEMO_CUSTOMER, body=body)
        return client.post(
            f"/demo/shop/api/{acme_bot.public_key}/refunds",
            data=body,
            content_type="application/json",
            headers=headers,
        )

    started = post({"order_id": "1235", "amount": 30})
    assert started.status_code == 201
    assert started.json()["status"] == "started" and started.json()["amount"] == "30.00"
    assert post({"order_id": "4321", "amount": 5}).status_code == 404
    assert post({"order_id": "1236", "amount": 999}).status_code == 422


def _refund(client, bot, data, *, key=None, user_id=DEMO_CUSTOMER, sent_key=None):
    """POST a refund signed with `key`; `sent_key` is the header as it arrives (changed on
    the way when it differs)."""
    body = json.dumps(data).encode()
    headers = signed_headers(secret=bot.secret_key, user_id=user_id, body=body, idempotency_key=key)
    if sent_key is not None:
        headers["Idempotency-Key"] = sent_key
    return client.post(
        f"/demo/shop/api/{bot.public_key}/refunds",
        data=body,
        content_type="application/json",
        headers=headers,
    )


def test_a_refund_sent_again_with_its_key_answers_the_first_refund(client, acme_bot):
    first = _refund(client, acme_bot, {"order_id": "1235", "amount": 30}, key="msg-41-1")
    again = _refund(client, acme_bot, {"order_id": "1235", "amount": 30}, key="msg-41-1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json(), "the same refund, not a second one"
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first


def test_another_key_or_no_key_is_another_refund(client, acme_bot):
    first = _refund(client, acme_bot, {"order_id": "1235", "amount": 30}, key="msg-41-1")
    other = _refund(client, acme_bot, {"order_id": "1235", "amount": 30}, key="msg-42-1")
    unkeyed = [_refund(client, acme_bot, {"order_id": "1235", "amount": 30}) for _ in range(2)]

    refunds = {r.json()["refund_id"] for r in [first, other, *unkeyed]}
    assert len(refunds) == 4
    assert all(r.status_code == 201 for r in [other, *unkeyed])


def test_a_key_reused_for_another_refund_is_refused(client, acme_bot):
    _refund(client, acme_bot, {"order_id": "1235", "amount": 30}, key="call-9")

    reused = _refund(client, acme_bot, {"order_id": "1235", "amount": 40}, key="call-9")

    assert reused.status_code == 422
    assert "used for a different request" in reused.json()["error"]


def test_keys_are_each_customers_own(client, acme_bot):
    # The same key from another customer is their own refund (here: not their order).
    _refund(client, acme_bot, {"order_id": "1235", "amount": 30}, key="call-9")

    theirs = _refund(
        client, acme_bot, {"order_id": "1235", "amount": 30}, key="call-9", user_id="someone-else"
    )

    assert theirs.status_code == 404 and "Idempotent-Replayed" not in theirs


def test_a_key_changed_on_the_way_is_refused_and_nothing_is_refunded(client, acme_bot):
    changed = _refund(
        client, acme_bot, {"order_id": "1235", "amount": 30}, key="msg-41-1", sent_key="msg-41-2"
    )
    dropped = _refund(
        client, acme_bot, {"order_id": "1235", "amount": 30}, key="msg-41-1", sent_key=""
    )

    assert changed.status_code == dropped.status_code == 401
    # The refused requests claimed no key: the genuine one runs.
    genuine = _refund(client, acme_bot, {"order_id": "1235", "amount": 30}, key="msg-41-2")
    assert genuine.status_code == 201 and "Idempotent-Replayed" not in genuine


@pytest.mark.django_db(transaction=True)
def test_seed_demos_actions_work_against_the_shop_on_this_instance(live_server, settings):
    """The demo's actions call this instance's own, local address: allowed for the demo shop
    only (private addresses stay refused for everything else)."""
    settings.SITE_URL = live_server.url
    settings.ACTIONS_ALLOW_PRIVATE_NETWORKS = False
    bot = BotFactory()
    shop = f"{live_server.url}/demo/shop/api/{bot.public_key}"
    actions = {name: action_put(bot=bot, name=name, **f) for name, f in demo_actions(shop).items()}

    found = action_run(
        action=actions["lookup_order"], arguments={"order_id": "1234"}, user_id=DEMO_CUSTOMER
    )
    assert found.outcome == Outcome.OK, found.error
    assert found.text.startswith("Order 1234 (Trail running shoes) is shipped, arriving ")

    theirs = action_run(
        action=actions["lookup_order"], arguments={"order_id": "4321"}, user_id=DEMO_CUSTOMER
    )
    assert theirs.outcome == Outcome.NOT_FOUND and "Someone" not in theirs.text

    refund = action_run(
        action=actions["start_refund"],
        arguments={"order_id": "1235", "amount": 30},
        user_id=DEMO_CUSTOMER,
        confirmed=True,
    )
    assert refund.outcome == Outcome.OK, refund.error
    assert "Your refund of $30.00 for order 1235 has started" in refund.text

    # A confirmed call sent again with its key (call-<id>): the first refund's reference.
    def keyed(key):
        return action_run(
            action=actions["start_refund"],
            arguments={"order_id": "1235", "amount": 30},
            user_id=DEMO_CUSTOMER,
            confirmed=True,
            idempotency_key=key,
        )

    once, again, other = keyed("call-1"), keyed("call-1"), keyed("call-2")
    assert once.outcome == again.outcome == other.outcome == Outcome.OK
    assert again.text == once.text and re.search(r"reference R-[0-9A-F]{8}", once.text)
    assert other.text != once.text, "another call, another refund"

    big = action_run(
        action=actions["start_refund"],
        arguments={"order_id": "1235", "amount": 80},
        user_id=DEMO_CUSTOMER,
        confirmed=True,
    )
    assert big.outcome == Outcome.HANDOFF
    assert big.handoff_reason.startswith("Refund $80.00 for order 1235")

    # Another action on this instance's own address, not the demo shop: refused.
    actions["lookup_order"].url_template = live_server.url + "/healthz?{order_id}"
    refused = action_run(
        action=actions["lookup_order"], arguments={"order_id": "1234"}, user_id=DEMO_CUSTOMER
    )
    assert refused.outcome == Outcome.FAILED and refused.error.startswith("address refused")
