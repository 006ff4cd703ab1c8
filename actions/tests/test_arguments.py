"""Arguments without an LLM: found in the message by the schema's patterns, and the question
for what is missing."""

import pytest

from actions.services import action_arguments_from_text, action_missing, action_question
from actions.tests.factories import ActionFactory, RefundActionFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Where's my order 1234?", {"order_id": "1234"}),
        ("where is order #98765", {"order_id": "98765"}),
        ("1236", {"order_id": "1236"}),
        ("Where's my order?", {}),
        ("order 12 please", {}),  # too short to be an order number
        ("call me at 5551234567890", {}),  # too long: not a word of 4-10 digits
    ],
)
def test_it_finds_the_order_number_by_the_schemas_pattern(acme_bot, text, expected):
    action = ActionFactory(bot=acme_bot)

    assert action_arguments_from_text(action=action, text=text) == expected


def test_each_piece_of_the_message_goes_to_one_argument_typed_per_schema(acme_bot):
    action = RefundActionFactory(bot=acme_bot)

    found = action_arguments_from_text(action=action, text="Refund $1000 on order 1235 please")
    assert found == {"amount": 1000, "order_id": "1235"}

    found = action_arguments_from_text(action=action, text="I'd like $12.50 back for 1236")
    assert found == {"amount": 12.5, "order_id": "1236"}


def test_an_enum_value_in_the_message_is_taken(acme_bot):
    action = ActionFactory(
        bot=acme_bot,
        input_schema={
            "type": "object",
            "properties": {"speed": {"type": "string", "enum": ["standard", "express"]}},
        },
        url_template="https://shop.example/api/shipping",
    )

    assert action_arguments_from_text(action=action, text="Switch to Express") == {
        "speed": "express"
    }


def test_it_lists_the_required_arguments_not_given(acme_bot):
    action = RefundActionFactory(bot=acme_bot)

    assert action_missing(action=action, arguments={}) == ["order_id", "amount"]
    assert action_missing(action=action, arguments={"order_id": "1235", "amount": ""}) == ["amount"]
    assert action_missing(action=action, arguments={"order_id": "1235", "amount": 5}) == []


def test_it_asks_for_an_argument_in_the_schemas_words(acme_bot):
    action = RefundActionFactory(bot=acme_bot)

    assert action_question(action=action, field="order_id") == "What's your order number?"
    assert action_question(action=action, field="amount") == "What's your refund amount?"

    action.input_schema["properties"]["amount"]["description"] = "How much should we refund?"
    assert action_question(action=action, field="amount") == "How much should we refund?"
    assert action_question(action=action, field="gift_note") == "What's your gift note?"
