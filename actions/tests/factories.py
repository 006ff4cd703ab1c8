import factory

from actions.models import Action
from bots.tests.factories import BotFactory

ORDER_SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {
            "type": "string",
            "title": "order number",
            "description": "The order number, e.g. 1234.",
            "pattern": "^\\d{4,10}$",
        }
    },
    "required": ["order_id"],
    "additionalProperties": False,
}

REFUND_SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": ORDER_SCHEMA["properties"]["order_id"],
        "amount": {
            "type": "number",
            "exclusiveMinimum": 0,
            "title": "refund amount",
            "pattern": "\\$\\s?(\\d+(?:\\.\\d{1,2})?)",
        },
    },
    "required": ["order_id", "amount"],
    "additionalProperties": False,
}


class ActionFactory(factory.django.DjangoModelFactory):
    """lookup_order against a business at https://shop.example (tests point it at a local
    BusinessServer)."""

    class Meta:
        model = Action

    bot = factory.SubFactory(BotFactory)
    name = "lookup_order"
    description = "Look up one of the customer's orders by its number."
    input_schema = factory.LazyFunction(lambda: dict(ORDER_SCHEMA))
    method = Action.Method.GET
    url_template = "https://shop.example/api/orders/{order_id}"
    audience = Action.Audience.VERIFIED
    result_template = "Order {{ id }} is {{ status }}, arriving {{ eta }}."
    progress_text = "Checking your order…"
    intent = "order_status"


class RefundActionFactory(ActionFactory):
    name = "start_refund"
    description = "Start a refund on one of the customer's orders."
    input_schema = factory.LazyFunction(lambda: dict(REFUND_SCHEMA))
    method = Action.Method.POST
    url_template = "https://shop.example/api/refunds"
    requires_confirmation = True
    confirmation_template = "Refund ${{ '%.2f'|format(amount) }} for order {{ order_id }}."
    limit_argument = "amount"
    limit_max = 50
    result_template = "Refund {{ refund_id }} started for order {{ order_id }}."
    progress_text = "Starting your refund…"
    intent = ""
