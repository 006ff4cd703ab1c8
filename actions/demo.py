"""The demo shop: a tiny stand-in for a business's order API, served by this instance at
/demo/shop/api/ only when settings.DEMO_SHOP (development by default). `seed_demo` points Acme's
`lookup_order` and `start_refund` actions at it, so "Where's my order 1234?" works on a fresh
`make run` with no API key and no outside service.

It behaves as a business's server should: it trusts a customer id only with a valid signature
(actions.signing, keyed with the bot's secret key, which the business shares), and it answers
only that customer's own orders: another customer's order number is "not found", never data.
A refund is acknowledged, not booked; what is kept is what its Idempotency-Key needs
(`demo_once`): a refund sent again with the same key (a turn retried after a crash) gets the
first answer back and starts no second refund.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from django.core.cache import cache
from django.utils import timezone

DEMO_CUSTOMER = "demo-customer"
OTHER_CUSTOMER = "someone-else"
# Refunds above an order's total are refused (422) by the shop itself; Handoff's own policy
# limit (seed_demo: $50) sends bigger ones to a person before any call.
ORDERS = {
    "1234": {
        "customer": DEMO_CUSTOMER,
        "status": "shipped",
        "eta_days": 2,
        "items": ["Trail running shoes"],
        "total": "89.00",
        "carrier": "UPS",
    },
    "1235": {
        "customer": DEMO_CUSTOMER,
        "status": "delivered",
        "eta_days": None,
        "items": ["Water bottle", "Running socks (3 pairs)"],
        "total": "120.00",
        "carrier": "USPS",
    },
    "1236": {
        "customer": DEMO_CUSTOMER,
        "status": "processing",
        "eta_days": 5,
        "items": ["Rain jacket"],
        "total": "45.00",
        "carrier": "",
    },
    "4321": {
        "customer": OTHER_CUSTOMER,
        "status": "shipped",
        "eta_days": 1,
        "items": ["Someone else's parcel"],
        "total": "310.00",
        "carrier": "FedEx",
    },
}


def demo_order(*, order_id: str, customer: str) -> dict | None:
    """The order as the API shows it, or None when it is not this customer's (or not at all)."""
    order = ORDERS.get(order_id)
    if order is None or order["customer"] != customer:
        return None
    eta = ""
    if order["eta_days"] is not None:
        eta = (timezone.localdate() + timedelta(days=order["eta_days"])).strftime("%A %-d %B")
    return {
        "id": order_id,
        "status": order["status"],
        "eta": eta or "already delivered",
        "items": order["items"],
        "total": order["total"],
        "carrier": order["carrier"],
    }


def demo_refund_problem(*, order: dict, amount) -> str:
    """Why the shop refuses a refund of `amount` on `order`, or ""."""
    try:
        value = Decimal(str(amount))
    except ArithmeticError:
        return "amount must be a number"
    if not value.is_finite() or value <= 0:
        return "amount must be positive"
    if value > Decimal(order["total"]):
        return f"amount is above the order's total ({order['total']})"
    return ""


# How long a key's answer is kept (Stripe keeps them 24 hours): far longer than any retry.
IDEMPOTENCY_SECONDS = 24 * 3600
REUSED_KEY = "this Idempotency-Key was used for a different request"
RUNNING_KEY = "a request with this Idempotency-Key is still running"


def demo_once(
    *, scope: str, key: str, body: bytes, run: Callable[[], tuple[int, dict]]
) -> tuple[int, dict, bool]:
    """(status, JSON, replayed): `run`'s answer the first time `key` is seen in `scope` (the
    shop and the customer: keys are theirs, not global), and the same answer, replayed, for a
    repeat with the same body; `run` runs at most once per key. No key: `run` runs.

    As the IETF's Idempotency-Key draft says: the same key with another body is 422 (a key
    names one request), and a repeat while the first still runs is 409. Kept in Django's cache
    (this process's memory by default, Redis shared by every process with REDIS_URL): a demo
    may forget a key when restarted; a real shop keeps them in its database, in the refund's
    transaction."""
    if not key:
        status, data = run()
        return status, data, False
    entry = "demo-shop-idem:" + hashlib.sha256(f"{scope}\0{key}".encode()).hexdigest()
    fingerprint = hashlib.sha256(body).hexdigest()
    # cache.add is atomic (locmem's lock, Redis's SET NX): one request claims the key.
    if cache.add(entry, {"body": fingerprint, "answer": None}, IDEMPOTENCY_SECONDS):
        try:
            status, data = run()
        except BaseException:
            cache.delete(entry)  # nothing was answered: a repeat may run it
            raise
        cache.set(entry, {"body": fingerprint, "answer": [status, data]}, IDEMPOTENCY_SECONDS)
        return status, data, False
    seen = cache.get(entry) or {}
    if seen.get("body") != fingerprint:
        return 422, {"error": REUSED_KEY}, False
    if seen.get("answer") is None:
        return 409, {"error": RUNNING_KEY}, False
    status, data = seen["answer"]
    return status, data, True
