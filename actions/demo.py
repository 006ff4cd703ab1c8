"""The demo shop: a tiny stand-in for a business's order API, served by this instance at
/demo/shop/api/ only when settings.DEMO_SHOP (development by default). `seed_demo` points Acme's
`lookup_order` and `start_refund` actions at it, so "Where's my order 1234?" works on a fresh
`make run` with no API key and no outside service.

It behaves as a business's server should: it trusts a customer id only with a valid signature
(actions.signing, keyed with the bot's secret key, which the business shares), and it answers
only that customer's own orders: another customer's order number is "not found", never data.
Nothing is stored: a refund is acknowledged, not booked.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

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
