"""What an admin may save: a schema the metaschema accepts, templates that parse, a URL whose
placeholders are arguments, and controls that make sense together."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from actions.tests.factories import ActionFactory, RefundActionFactory
from bots.models import Bot

pytestmark = pytest.mark.django_db


def _errors(action) -> dict:
    with pytest.raises(ValidationError) as caught:
        action.full_clean()
    return caught.value.message_dict


def test_a_valid_action_saves(acme_bot):
    ActionFactory.build(bot=acme_bot).full_clean()
    RefundActionFactory.build(bot=acme_bot).full_clean()


def test_the_schema_is_checked_against_the_metaschema(acme_bot):
    action = ActionFactory.build(
        bot=acme_bot,
        input_schema={"type": "object", "properties": {"order_id": {"type": "strnig"}}},
        url_template="https://shop.example/api/orders",
    )
    assert "input_schema" in _errors(action)

    action.input_schema = ["not", "an", "object"]
    assert "type" in _errors(action)["input_schema"][0]


def test_templates_that_do_not_parse_are_refused(acme_bot):
    action = ActionFactory.build(bot=acme_bot, result_template="Order {{ id ")
    assert "result_template" in _errors(action)


def test_url_placeholders_must_be_arguments_and_the_url_http(acme_bot):
    action = ActionFactory.build(bot=acme_bot, url_template="ftp://shop.example/{customer}")
    errors = _errors(action)["url_template"]
    assert any("{customer}" in e for e in errors) and any("http" in e for e in errors)


def test_the_controls_must_make_sense_together(acme_bot):
    action = RefundActionFactory.build(bot=acme_bot, limit_max=None, confirmation_template="")
    errors = _errors(action)
    assert "limit_max" in errors and "confirmation_template" in errors

    action = RefundActionFactory.build(bot=acme_bot, limit_argument="total")
    assert "limit_argument" in _errors(action)


def test_the_secret_header_may_not_replace_the_signature(acme_bot):
    action = ActionFactory.build(bot=acme_bot, secret_header_name="X-Handoff-Signature")
    assert "secret_header_name" in _errors(action)
    action.secret_header_name = "Bad Header"
    assert "secret_header_name" in _errors(action)
    # Nor the signed idempotency key: a secret there would be sent as the key.
    action.secret_header_name = "idempotency-key"
    assert "secret_header_name" in _errors(action)


def test_names_are_snake_case_and_unique_per_bot(acme_bot, globex_bot):
    assert "name" in _errors(ActionFactory.build(bot=acme_bot, name="Lookup-Order"))
    ActionFactory(bot=acme_bot)
    ActionFactory(bot=globex_bot)  # another bot may use the name
    with pytest.raises(IntegrityError):
        ActionFactory(bot=acme_bot)


def test_the_timeout_is_one_to_thirty_seconds(acme_bot):
    assert "timeout_seconds" in _errors(ActionFactory.build(bot=acme_bot, timeout_seconds=31))
    assert "timeout_seconds" in _errors(ActionFactory.build(bot=acme_bot, timeout_seconds=0))


def test_a_bot_makes_three_action_calls_per_message_by_default_at_most_five(acme_bot):
    assert acme_bot.action_calls_per_turn == 3
    acme_bot.action_calls_per_turn = 6
    with pytest.raises(ValidationError) as caught:
        acme_bot.full_clean()
    assert "action_calls_per_turn" in caught.value.message_dict
    assert Bot._meta.get_field("action_calls_per_turn").default == 3


def test_unpaired_braces_in_the_url_are_refused_with_the_reason(acme_bot):
    action = ActionFactory.build(bot=acme_bot, url_template="https://shop.example/{order_id")
    assert "Braces must pair up" in _errors(action)["url_template"][0]


def test_a_schema_may_refer_only_inside_itself(acme_bot):
    remote = {"$ref": "http://169.254.169.254/latest/meta-data/"}
    action = ActionFactory.build(
        bot=acme_bot,
        input_schema={"type": "object", "properties": {"order_id": remote}},
    )
    assert "points outside the schema" in _errors(action)["input_schema"][0]

    action.input_schema = {
        "type": "object",
        "$defs": {"order": {"type": "string"}},
        "properties": {"order_id": {"$ref": "#/$defs/order"}},
    }
    action.full_clean()
