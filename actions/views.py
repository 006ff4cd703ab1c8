"""The demo shop's API (actions/demo.py): JSON, signed requests only, 404 when DEMO_SHOP is off.

The business's side of the contract, shown working: the customer id is taken from the signed
header, never from the request's arguments, so typing someone else's order number gets "not
found"; a refund sent again with the same signed Idempotency-Key answers the first one's result
(marked `Idempotent-Replayed: true`, as Stripe does) and starts no second refund.
"""

from __future__ import annotations

import json
import uuid

from django.conf import settings
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from actions.demo import demo_once, demo_order, demo_refund_problem
from actions.signing import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    USER_HEADER,
    signature_valid,
)
from bots.selectors import bot_for_public_key


def _signed_customer(request: HttpRequest, public_key: str) -> str | JsonResponse:
    """The customer id a valid signature vouches for, or the error response."""
    if not settings.DEMO_SHOP:
        raise Http404("The demo shop is off (DEMO_SHOP).")
    bot = bot_for_public_key(public_key=public_key)
    if bot is None:
        raise Http404("No such shop.")
    customer = request.headers.get(USER_HEADER, "")
    valid = signature_valid(
        secret=bot.secret_key,
        timestamp=request.headers.get(TIMESTAMP_HEADER, ""),
        user_id=customer,
        body=request.body,
        given=request.headers.get(SIGNATURE_HEADER, ""),
        idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, ""),
    )
    if not valid:
        return JsonResponse({"error": "bad or missing signature"}, status=401)
    if not customer:
        return JsonResponse({"error": "sign in first"}, status=401)
    return customer


@csrf_exempt  # a server-to-server API: the signature is the authentication
@require_GET
def demo_order_get(request: HttpRequest, public_key: str, order_id: str) -> JsonResponse:
    customer = _signed_customer(request, public_key)
    if isinstance(customer, JsonResponse):
        return customer
    order = demo_order(order_id=order_id, customer=customer)
    if order is None:
        return JsonResponse({"error": "no such order"}, status=404)
    return JsonResponse(order)


@csrf_exempt
@require_POST
def demo_refund_start(request: HttpRequest, public_key: str) -> JsonResponse:
    customer = _signed_customer(request, public_key)
    if isinstance(customer, JsonResponse):
        return customer
    status, data, replayed = demo_once(
        scope=f"{public_key}/refunds/{customer}",
        key=request.headers.get(IDEMPOTENCY_HEADER, ""),
        body=request.body,
        run=lambda: _refund(request.body, customer),
    )
    response = JsonResponse(data, status=status)
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def _refund(body: bytes, customer: str) -> tuple[int, dict]:
    try:
        data = json.loads(body)
    except ValueError:
        return 400, {"error": "send JSON"}
    if not isinstance(data, dict):
        return 400, {"error": "send a JSON object"}
    order = demo_order(order_id=str(data.get("order_id", "")), customer=customer)
    if order is None:
        return 404, {"error": "no such order"}
    problem = demo_refund_problem(order=order, amount=data.get("amount"))
    if problem:
        return 422, {"error": problem}
    refund = {
        "refund_id": "R-" + uuid.uuid4().hex[:8].upper(),
        "order_id": order["id"],
        "amount": f"{float(data['amount']):.2f}",
        "status": "started",
        "days": 5,
    }
    return 201, refund
