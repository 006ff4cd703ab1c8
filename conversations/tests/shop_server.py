"""A local HTTP server standing in for a business's own API, for the action tests: orders by
number (GET /orders/<id>) and refunds (POST /refunds), answering only the customer named in
the signed X-Handoff-User-Id header. Every request is recorded (method, path, headers, body),
and a test can make the next answers fail (`status`) or be slow (`delay`).

Also the actions these tests give a bot (`order_action`, `refund_action`): what an admin would
configure against such an API.
"""

from __future__ import annotations

import json
import re
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from actions.models import Action

ORDERS = {
    "1234": {"owner": "user-42", "status": "shipped", "eta": "Tuesday 9 December"},
    "1235": {"owner": "user-42", "status": "delivered", "eta": "Monday 1 December"},
    "4321": {"owner": "someone-else", "status": "processing", "eta": "Friday"},
}


class ShopServer:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status: int | None = None  # answer every request with this status
        self.delay = 0.0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(owner: ShopServer):
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            owner.requests.append(
                {"method": method, "path": self.path, "headers": dict(self.headers), "body": body}
            )
            if owner.delay:
                time.sleep(owner.delay)
            if owner.status is not None:
                return self._json(owner.status, {"error": "scripted"})
            user = self.headers.get("X-Handoff-User-Id", "")
            if method == "GET":
                match = re.fullmatch(r"/orders/(\d+)", self.path)
                order = ORDERS.get(match.group(1)) if match else None
                if order is None or order["owner"] != user:
                    return self._json(404, {"error": "no such order"})
                return self._json(200, {"id": match.group(1), **order})
            data = json.loads(body or b"{}")
            order = ORDERS.get(str(data.get("order_id")))
            if self.path != "/refunds" or order is None or order["owner"] != user:
                return self._json(404, {"error": "no such order"})
            amount = Decimal(str(data["amount"]))
            return self._json(200, {"order_id": data["order_id"], "refunded": f"{amount:.2f}"})

        def do_GET(self):
            self._answer("GET")

        def do_POST(self):
            self._answer("POST")

        def _json(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return Handler


ORDER_SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "pattern": "^\\d{4}$", "description": "your order number"}
    },
    "required": ["order_id"],
    "additionalProperties": False,
}
REFUND_SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "pattern": "^\\d{4}$", "description": "your order number"},
        "amount": {
            "type": "number",
            "pattern": "^\\$(\\d+(?:\\.\\d{1,2})?)$",
            "description": "the amount to refund",
            "minimum": 0.01,
        },
    },
    "required": ["order_id", "amount"],
    "additionalProperties": False,
}


def order_action(*, bot, base_url: str, **fields) -> Action:
    """lookup_order, for verified customers, bound to the demo intents' order_status. `fields`
    change any of it."""
    defaults = {
        "name": "lookup_order",
        "description": "Look up one of the customer's orders by its number.",
        "input_schema": ORDER_SCHEMA,
        "method": "GET",
        "url_template": base_url + "/orders/{order_id}",
        "secret_header_name": "X-Shop-Key",
        "secret_header_value": "shop-secret-never-shown",
        "audience": "verified",
        "result_template": "Order {{ id }} is {{ status }}, arriving {{ eta }}.",
        "progress_text": "Checking your order…",
        "intent": "order_status",
    }
    return Action.objects.create(bot=bot, **{**defaults, **fields})


def refund_action(*, bot, base_url: str, **fields) -> Action:
    """start_refund: confirmed on a card, up to $50; above it a person decides. `fields`
    change any of it (a refund with no card: requires_confirmation=False)."""
    defaults = {
        "name": "start_refund",
        "description": "Refund an amount of one of the customer's orders.",
        "input_schema": REFUND_SCHEMA,
        "method": "POST",
        "url_template": base_url + "/refunds",
        "audience": "verified",
        "requires_confirmation": True,
        "confirmation_template": "Refund ${{ amount }} for order {{ order_id }}",
        "limit_argument": "amount",
        "limit_max": Decimal("50"),
        "result_template": "Refund of ${{ refunded }} started for order {{ order_id }}.",
        "progress_text": "Starting your refund…",
    }
    return Action.objects.create(bot=bot, **{**defaults, **fields})
