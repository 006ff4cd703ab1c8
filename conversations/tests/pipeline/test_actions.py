"""Actions in a turn (conversations/pipeline/actions.py), against a local server standing in for
the business: without an LLM, an intent bound to an action and the question for a missing
argument; with one, function calling through the real `openai` client against the local
protocol server: calls checked and run, results fed back, the bound held."""

import json

import pytest

from actions.signing import signature_valid
from conversations.pipeline import Turn, run
from conversations.pipeline.actions import BOUND_TEXT, CANT_CHECK, PendingAction
from conversations.pipeline.classify import OFFER_QUESTION
from conversations.tests.openai_server import Reply
from conversations.tests.shop_server import ShopServer, order_action, refund_action

pytestmark = pytest.mark.django_db

VERA = "user-42"  # the verified customer the shop knows
SHIPPED = "Order 1234 is shipped, arriving Tuesday 9 December."


@pytest.fixture
def shop(settings):
    # The stand-in business listens on 127.0.0.1: private networks allowed for these tests.
    settings.ACTIONS_ALLOW_PRIVATE_NETWORKS = True
    server = ShopServer()
    yield server
    server.stop()


@pytest.fixture
def order_bot(shop_bot, shop):
    order_action(bot=shop_bot, base_url=shop.url)
    return shop_bot


def turn(bot, text, *, user_id=VERA, history=None, pending=None, message_id=None):
    """One turn: (tool_call events, token texts, final event), the tokens adding up to the
    final text and every tool_call announced before it is done."""
    events = list(
        run(
            Turn(
                bot=bot,
                text=text,
                history=list(history or []),
                user_id=user_id,
                pending_action=pending,
                message_id=message_id,
            )
        )
    )
    final = events[-1]
    assert final["type"] == "final"
    tools = [e for e in events if e["type"] == "tool_call"]
    tokens = [e["text"] for e in events if e["type"] == "token"]
    assert "".join(tokens) == final["text"]
    assert [e["state"] for e in tools] == ["running", "done"] * (len(tools) // 2)
    return tools, tokens, final


# --- Without an LLM -----------------------------------------------------------------------
def test_a_bound_intent_answers_from_the_shop_through_the_template(order_bot, shop):
    tools, _, final = turn(order_bot, "Where's my order 1234?")

    assert final["text"] == SHIPPED
    assert final["outcome"] == "answered"
    assert tools[0]["progress"] == "Checking your order…"
    assert tools[1] | {"outcome": "ok"} == tools[1] and tools[1]["arguments"] == {
        "order_id": "1234"
    }
    [call] = final["actions"]
    assert (call["name"], call["state"], call["outcome"]) == ("lookup_order", "done", "ok")
    [record] = final["trace"]["actions"]
    assert record["status"] == 200 and record["arguments"] == {"order_id": "1234"}
    [request] = shop.requests
    assert request["path"] == "/orders/1234"
    assert request["headers"]["X-Handoff-User-Id"] == VERA
    # Nothing a member reads (trace) or a browser gets (events) carries the URL or the secret.
    shown = json.dumps([final["trace"], tools, final["actions"]])
    assert shop.url not in shown and "shop-secret-never-shown" not in shown


def test_a_missing_argument_is_asked_for_and_the_next_message_supplies_it(order_bot, shop):
    _, _, asked = turn(order_bot, "Where is my order?")

    assert asked["text"] == "What's your order number?"
    [call] = asked["actions"]
    assert (call["state"], call["asked_for"]) == ("asking", "order_id")
    assert shop.requests == []

    pending = PendingAction(call_id=1, name="lookup_order", arguments={}, asked_for="order_id")
    history = [("user", "Where is my order?"), ("ai", asked["text"])]
    tools, _, final = turn(order_bot, "It's 1234", history=history, pending=pending)

    assert final["text"] == SHIPPED
    assert final["trace"]["action_resume"] == {"name": "lookup_order", "supplied": True}
    assert [c["state"] for c in final["actions"]] == ["done"]


def test_a_reply_that_does_not_answer_the_question_is_an_ordinary_turn(order_bot, shop):
    pending = PendingAction(call_id=1, name="lookup_order", arguments={}, asked_for="order_id")
    tools, _, final = turn(order_bot, "How long does shipping take?", pending=pending)

    assert tools == [] and shop.requests == []
    assert final["trace"]["action_resume"]["supplied"] is False
    assert "shipping" in final["text"].lower()


def test_an_unverified_customer_is_asked_to_sign_in_and_nothing_is_called(order_bot, shop):
    _, _, final = turn(order_bot, "Where's my order 1234?", user_id=None)

    assert "sign in" in final["text"]
    assert final["actions"][0]["outcome"] == "unverified"
    assert shop.requests == []


def test_another_customers_order_is_not_found_and_a_person_offered(order_bot, shop):
    _, _, final = turn(order_bot, "Where's my order 4321?")

    assert final["text"].startswith("I couldn't find that on your account.")
    assert final["outcome"] == "handoff_proposed" and final["extras"]["offer_human"] is True
    assert "processing" not in final["text"]


@pytest.mark.parametrize("trouble", ["status", "timeout"])
def test_a_failing_endpoint_says_so_and_offers_a_person(order_bot, shop, trouble):
    if trouble == "status":
        shop.status = 500
    else:
        order_bot.actions.update(timeout_seconds=1)
        shop.delay = 1.5

    _, _, final = turn(order_bot, "Where's my order 1234?")

    assert (
        final["text"] == f"{CANT_CHECK} A person from our team can help with it. {OFFER_QUESTION}"
    )
    assert final["outcome"] == "handoff_proposed" and final["requires_followup"]
    assert final["trace"]["action_failed"] is True
    assert final["trace"]["actions"][0]["error"] == (
        "http_500" if trouble == "status" else "timeout"
    )


def test_an_order_over_the_refund_limit_goes_to_a_person_with_its_details(shop_bot, shop):
    refund = refund_action(bot=shop_bot, base_url=shop.url)
    refund.intent = "order_status"  # bound for this test: the demo intents have no refunds
    refund.save(update_fields=["intent"])

    _, _, final = turn(shop_bot, "Where is my order 1235? refund $80")

    assert final["outcome"] == "handoff" and final["handoff"] is True
    handed = final["trace"]["action_handoff"]
    assert handed["name"] == "start_refund"
    assert handed["arguments"] == {"order_id": "1235", "amount": 80}
    assert "above" in handed["reason"] and "50" in handed["reason"]
    assert shop.requests == []


def _keys(shop) -> list[str | None]:
    return [r["headers"].get("Idempotency-Key") for r in shop.requests]


def test_a_retried_turn_sends_its_calls_idempotency_keys_again(shop_bot, shop):
    """A crash-recovery retry runs the turn's pipeline again for the same message: a refund
    that needs no card is sent twice, with the same key, so the shop can start it once."""
    refund_action(
        bot=shop_bot, base_url=shop.url, requires_confirmation=False, intent="order_status"
    )
    text = "Where is my order 1235? refund $20"

    for _ in range(2):
        _, _, final = turn(shop_bot, text, message_id=7)
        assert final["actions"][0]["outcome"] == "ok"
    turn(shop_bot, text, message_id=8)  # the customer asks again: a new message, a new key
    turn(shop_bot, text)  # a turn of no stored message (a draft): nothing to repeat

    assert [r["path"] for r in shop.requests] == ["/refunds"] * 4
    assert _keys(shop) == [
        "msg-7-start_refund-1",
        "msg-7-start_refund-1",
        "msg-8-start_refund-1",
        None,
    ]
    for request in shop.requests:
        headers = request["headers"]
        assert signature_valid(
            secret=shop_bot.secret_key,
            timestamp=headers["X-Handoff-Timestamp"],
            user_id=VERA,
            body=request["body"],
            given=headers["X-Handoff-Signature"],
            idempotency_key=headers.get("Idempotency-Key", ""),
        )


# --- With an LLM -----------------------------------------------------------------------
CLASSIFIED = Reply(tool={"name": "classify_message", "arguments": {"category": "answerable"}})


def lookup(order_id) -> Reply:
    return Reply(tool={"name": "lookup_order", "arguments": {"order_id": order_id}})


@pytest.fixture
def llm_order_bot(llm_bot, shop):
    order_action(bot=llm_bot, base_url=shop.url)
    return llm_bot


def test_the_model_calls_an_action_and_its_result_is_fed_back(llm_order_bot, llm_server, shop):
    llm_server.script("tool", CLASSIFIED, lookup("1234"), Reply(text="Your order has shipped."))

    tools, _, final = turn(llm_order_bot, "Can you check on order 1234 for me?")

    assert final["text"] == SHIPPED, "the customer reads the template, not the model's retelling"
    assert [t["state"] for t in tools] == ["running", "done"]
    first, second = llm_server.requests_of("tool")[1:3]
    assert [t["function"]["name"] for t in first["tools"]] == ["lookup_order"]
    fed = second["messages"][-1]
    assert fed["role"] == "tool" and json.loads(fed["content"]) == {
        "outcome": "ok",
        "result": SHIPPED,
    }
    # The model never sees where the action goes or its credential.
    sent = json.dumps(llm_server.requests_of("tool"))
    assert shop.url not in sent and "shop-secret-never-shown" not in sent and "X-Shop" not in sent
    assert len(shop.requests) == 1


def test_a_sixth_call_is_not_run_past_the_bound(llm_order_bot, llm_server, shop):
    llm_order_bot.action_calls_per_turn = 5
    llm_order_bot.save(update_fields=["action_calls_per_turn"])
    llm_server.script("tool", CLASSIFIED, *[lookup("1234") for _ in range(6)])

    _, _, final = turn(llm_order_bot, "Check order 1234 again and again")

    assert len(shop.requests) == 5, "five calls ran; the sixth did not"
    assert final["trace"]["actions"][-1]["outcome"] == "not_run"
    assert final["trace"]["actions_bound"] == 5
    assert BOUND_TEXT in final["text"] and final["extras"]["offer_human"] is True


def test_the_default_bound_is_three_calls(llm_order_bot, llm_server, shop):
    llm_server.script("tool", CLASSIFIED, *[lookup("1234") for _ in range(4)])

    turn(llm_order_bot, "Check order 1234 again and again")

    assert len(shop.requests) == 3


def test_a_call_that_breaks_the_schema_is_refused_and_never_sent(llm_order_bot, llm_server, shop):
    llm_server.script(
        "tool",
        CLASSIFIED,
        Reply(tool={"name": "lookup_order", "arguments": {"order_id": "../admin"}}),
        Reply(tool={"name": "delete_everything", "arguments": {}}),
        Reply(text="Sorry."),
    )

    _, _, final = turn(llm_order_bot, "Check order ../admin")

    assert shop.requests == []
    outcomes = [r["outcome"] for r in final["trace"]["actions"]]
    assert outcomes == ["invalid", "invalid"]
    refused = json.loads(llm_server.requests_of("tool")[2]["messages"][-1]["content"])
    assert refused["outcome"] == "invalid" and refused["error"].startswith("schema")
    assert final["outcome"] == "handoff_proposed" and "Order" not in final["text"]


def test_without_a_call_from_the_model_the_intent_binding_still_answers(
    llm_order_bot, llm_server, shop
):
    llm_server.script("tool", CLASSIFIED, Reply(text="NONE"))

    _, _, final = turn(llm_order_bot, "Where's my order 1234?")

    assert final["text"] == SHIPPED
    assert final["trace"]["action_binding"]["action"] == "lookup_order"


def test_an_llm_failure_falls_back_to_the_offline_binding(llm_order_bot, llm_server, shop):
    llm_server.script("tool", CLASSIFIED, Reply(status=500))

    _, _, final = turn(llm_order_bot, "Where's my order 1234?")

    assert final["text"] == SHIPPED
    assert final["trace"]["actions_fallback"].startswith("http_500")


def test_a_retried_llm_turn_keys_each_call_by_its_action_and_its_count(
    llm_order_bot, llm_server, shop
):
    """Each call of a turn has its own key; on the retry the model may call in another order,
    and a call keeps its key as long as it is the same action's same call."""
    refund_action(bot=llm_order_bot, base_url=shop.url, requires_confirmation=False)
    refund = Reply(tool={"name": "start_refund", "arguments": {"order_id": "1235", "amount": 20}})
    llm_server.script("tool", CLASSIFIED, lookup("1234"), lookup("1235"), refund, Reply(text=""))
    turn(llm_order_bot, "Check 1234 and 1235, and refund $20 on 1235", message_id=11)
    first = _keys(shop)
    shop.requests.clear()

    llm_server.script("tool", CLASSIFIED, refund, lookup("1234"), Reply(text=""))
    turn(llm_order_bot, "Check 1234 and 1235, and refund $20 on 1235", message_id=11)

    assert first == [
        "msg-11-lookup_order-1",
        "msg-11-lookup_order-2",
        "msg-11-start_refund-1",
    ]
    assert _keys(shop) == ["msg-11-start_refund-1", "msg-11-lookup_order-1"]


def test_a_draft_turn_calls_nothing_and_answers_from_the_knowledge(shop_bot, shop):
    # An action anyone may use, with a side effect and no card: the kind a draft must not run.
    order_action(bot=shop_bot, base_url=shop.url, audience="anyone", method="POST")
    events = list(run(Turn(bot=shop_bot, text="Where's my order 1234?", history=[], actions=False)))
    final = events[-1]
    assert shop.requests == []
    assert not [e for e in events if e["type"] == "tool_call"]
    assert not final.get("actions") and not final["trace"].get("actions")
    assert final["text"] != SHIPPED


def test_a_bound_action_that_changes_something_starts_only_from_a_message_naming_its_target(
    shop_bot, shop
):
    """Without an LLM a request and a question land on the same intent ("where is my order"
    is both). A lookup may ask for the order number; a refund may not: it starts only when the
    message names what it acts on, and otherwise the turn is answered as any other."""
    refund_action(bot=shop_bot, base_url=shop.url, intent="order_status")

    _, _, asked = turn(shop_bot, "where is my order")
    assert not asked.get("actions")
    assert asked["trace"]["action_binding"]["skipped"]
    assert asked["text"] != "What's your order number?"

    _, _, named = turn(shop_bot, "where is my order 1235? refund $20")
    [call] = named["actions"]
    assert (call["name"], call["state"]) == ("start_refund", "pending_confirmation")
    assert shop.requests == []  # the card comes first
