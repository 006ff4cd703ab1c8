"""Step 1: what kind of message it is, by rules, by embeddings, or by the LLM's tool call."""

import pytest

from conversations.pipeline.classify import CATEGORIES, SUBTYPES, by_rules
from conversations.pipeline.context import Context, Turn
from conversations.tests.openai_server import Reply


def rules(text: str, history=()):
    result = by_rules(
        Context(turn=Turn(bot=None, text=text, history=list(history)), llm=None), frozenset()
    )
    return (result.category, result.subtype) if result else None


@pytest.mark.parametrize(
    "text",
    [
        "I want to talk to a human",
        "can I speak with someone please",
        "connect me to an agent",
        "Agent!",
        "is there a real person I can chat with?",
        "let me talk to your manager",
        "I need a representative",
    ],
)
def test_it_recognises_a_request_for_a_person(text):
    assert rules(text) == ("human", "")


@pytest.mark.parametrize(
    "text",
    ["I talked to an agent yesterday about my order", "how do I become a sales agent", "hello"],
)
def test_it_does_not_mistake_other_mentions_for_a_request_for_a_person(text):
    assert rules(text) != ("human", "")


@pytest.mark.parametrize(
    "text,subtype",
    [
        ("I want to cancel my subscription", "cancellation"),
        ("please close my account", "cancellation"),
        ("my account was hacked", "security"),
        ("I think this is fraud", "security"),
        ("someone logged into my account from Russia", "security"),
        ("there is an unauthorised charge on my card", "billing_dispute"),
        ("you charged me twice for one order", "billing_dispute"),
        ("I'm going to sue you", "legal"),
        ("my lawyer will be in touch", "legal"),
        ("I'm sending a GDPR request for my data", "legal"),
        ("this is unacceptable, I want to complain", "complaint"),
        ("worst service ever", "complaint"),
    ],
)
def test_it_recognises_high_stakes_messages(text, subtype):
    assert rules(text) == ("high_stakes", subtype)


@pytest.mark.parametrize(
    "text", ["can I cancel my order?", "what is your cancellation policy", "my name is Sue"]
)
def test_ordinary_questions_are_not_high_stakes(text):
    assert rules(text) is None


def test_a_person_asked_for_in_a_high_stakes_message_keeps_the_subtype():
    assert rules("my account was hacked, get me a human now") == ("human", "security")


@pytest.mark.parametrize(
    "text,kind",
    [
        ("hi", "hello"),
        ("Good morning!", "hello"),
        ("hey there, how are you?", "hello"),
        ("thanks!", "thanks"),
        ("ok great, thank you so much", "thanks"),
        ("👍", "thanks"),
        ("bye", "bye"),
        ("no thanks, that's all", "bye"),
        ("nope", "bye"),
    ],
)
def test_it_recognises_a_bare_greeting(text, kind):
    assert rules(text) == ("greeting", kind)


def test_a_greeting_with_a_question_is_the_question():
    assert rules("hi, how long does shipping take?") is None
    assert rules("no, I want a refund") is None


@pytest.mark.parametrize(
    "text", ["asdkjh qwpoe zzz", "sdfsdfsdf", "jjjjjjjj", "?!?!", "...", "asdf jkl; qwer"]
)
def test_it_recognises_gibberish(text):
    assert rules(text) == ("nonsense", "")


@pytest.mark.parametrize(
    "text", ["E-4012", "how long does shiping take", "lol", "¿Cuánto tarda el envío?"]
)
def test_codes_typos_and_other_languages_are_not_gibberish(text):
    assert rules(text) != ("nonsense", "")


def test_off_topic_patterns_are_a_soft_decision():
    context = Context(turn=Turn(bot=None, text="tell me a joke", history=[]), llm=None)
    result = by_rules(context, frozenset())
    assert (result.category, result.soft) == ("irrelevant", True)


def test_are_you_a_bot_asks_about_the_bot():
    assert rules("are you a real person?") == ("greeting", "identity")


# --- With an LLM: a forced tool call ----------------------------------------------------------
@pytest.mark.django_db
def test_the_llm_classifies_through_a_forced_tool_call(llm_bot, llm_server, ask):
    llm_server.script(
        "tool", Reply(tool={"name": "classify_message", "arguments": {"category": "human"}})
    )

    _, final = ask(llm_bot, "could somebody ring me back this afternoon")

    [request] = llm_server.requests_of("tool")
    [tool] = request["tools"]
    assert tool["function"]["name"] == "classify_message"
    properties = tool["function"]["parameters"]["properties"]
    assert properties["category"]["enum"] == list(CATEGORIES)
    assert properties["subtype"]["enum"] == [*SUBTYPES, "none"]
    assert request["tool_choice"] == {"type": "function", "function": {"name": "classify_message"}}
    assert request["messages"][-1]["content"] == "could somebody ring me back this afternoon"
    assert final["trace"]["classify_method"] == "llm"
    assert final["handoff"] is True


@pytest.mark.django_db
def test_the_llm_finds_high_stakes_the_rules_miss(llm_bot, llm_server, ask):
    arguments = {"category": "high_stakes", "subtype": "security"}
    llm_server.script("tool", Reply(tool={"name": "classify_message", "arguments": arguments}))

    _, final = ask(llm_bot, "there are logins on my profile from a city I've never been to")

    assert (final["trace"]["category"], final["trace"]["subtype"]) == ("high_stakes", "security")
    assert final["priority"] == "urgent"
    assert final["outcome"] == "handoff_proposed"


@pytest.mark.django_db
def test_a_request_for_a_person_stands_when_the_llm_disagrees(llm_bot, llm_server, ask):
    llm_server.script(
        "tool", Reply(tool={"name": "classify_message", "arguments": {"category": "answerable"}})
    )

    _, final = ask(llm_bot, "I want to speak to a human")

    assert final["trace"]["category"] == "human"
    assert final["trace"]["classify_scores"]["llm"] == {"category": "answerable"}
    assert final["handoff"] is True


@pytest.mark.django_db
def test_a_malformed_tool_call_falls_back_to_the_rules(llm_bot, llm_server, ask):
    llm_server.script(
        "tool", Reply(tool={"name": "classify_message", "arguments": {"category": "banana"}})
    )
    llm_server.script("stream", Reply(text="Standard shipping takes 3 to 5 business days [1]."))

    _, final = ask(llm_bot, "How long does shipping take?")

    assert "malformed" in final["trace"]["classify_fallback"]
    assert final["trace"]["classify_method"] == "embeddings"
    assert final["trace"]["answer_method"] == "llm", "a bad reply is not an unreachable server"


@pytest.mark.django_db
def test_a_classifier_timeout_falls_back_to_the_rules(llm_bot, llm_server, ask):
    llm_server.script("tool", Reply(delay=2))

    _, final = ask(llm_bot, "asdkjh qwpoe zzz")

    assert "timeout" in final["trace"]["classify_fallback"]
    assert final["trace"]["category"] == "nonsense"
    assert final["outcome"] == "clarified"


@pytest.mark.django_db
def test_a_greeting_is_neither_rewritten_nor_looked_up(llm_bot, llm_server, ask):
    llm_server.script(
        "tool", Reply(tool={"name": "classify_message", "arguments": {"category": "greeting"}})
    )

    _, final = ask(llm_bot, "brilliant, thank you!", history=[("user", "where is my order")])

    assert final["trace"]["subtype"] == "thanks"
    assert final["text"] == "You're welcome! Anything else I can help with?"  # the bot's intent
    assert [kind for kind in ("complete", "stream") if llm_server.requests_of(kind)] == []
    assert final["trace"]["retrieved"] == []


@pytest.mark.django_db
def test_knowledge_that_answers_overrules_an_llm_calling_it_off_topic(llm_bot, llm_server, ask):
    llm_server.script(
        "tool", Reply(tool={"name": "classify_message", "arguments": {"category": "irrelevant"}})
    )
    llm_server.script("stream", Reply(text="We accept Visa, Mastercard and PayPal [1]."))

    _, final = ask(llm_bot, "Which payment methods do you accept?")

    assert final["trace"]["category"] == "answerable"
    assert final["trace"]["classify_scores"]["overridden_by_knowledge"] == "irrelevant"
    assert final["outcome"] == "answered"
