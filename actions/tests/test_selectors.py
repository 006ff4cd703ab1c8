import pytest

from actions.selectors import action_for_intent, action_get, action_tools
from actions.tests.factories import ActionFactory, RefundActionFactory

pytestmark = pytest.mark.django_db


def test_the_tools_are_the_enabled_actions_without_url_or_secret(acme_bot, globex_action):
    ActionFactory(bot=acme_bot, secret_header_name="X-Key", secret_header_value="hush-123")
    RefundActionFactory(bot=acme_bot, enabled=False)

    tools = action_tools(bot=acme_bot)

    assert [t["function"]["name"] for t in tools] == ["lookup_order"]
    assert tools[0]["type"] == "function"
    assert set(tools[0]["function"]) == {"name", "description", "parameters"}
    assert tools[0]["function"]["parameters"]["required"] == ["order_id"]
    assert "shop.example" not in str(tools) and "hush-123" not in str(tools)


def test_get_and_intent_find_enabled_actions_of_this_bot_only(acme_bot, globex_bot):
    lookup = ActionFactory(bot=acme_bot)
    RefundActionFactory(bot=acme_bot, enabled=False, intent="refund_request")
    ActionFactory(bot=globex_bot, name="globex_only", intent="globex_intent")

    assert action_get(bot=acme_bot, name="lookup_order") == lookup
    assert action_get(bot=acme_bot, name="start_refund") is None  # disabled
    assert action_get(bot=acme_bot, name="globex_only") is None  # another bot's
    assert action_get(bot=acme_bot, name="made_up") is None
    assert action_for_intent(bot=acme_bot, intent="order_status") == lookup
    assert action_for_intent(bot=acme_bot, intent="refund_request") is None
    assert action_for_intent(bot=acme_bot, intent="globex_intent") is None
    assert action_for_intent(bot=acme_bot, intent="") is None
