"""Step 2: follow-ups become standalone questions for retrieval."""

import pytest

from conversations.pipeline.rewrite import heuristic
from conversations.tests.openai_server import Reply

COST = [
    ("user", "How much does shipping cost?"),
    ("ai", "Standard shipping is free on orders over $50; below that it costs $4.95."),
]


def test_a_follow_up_borrows_the_subject_of_the_previous_question():
    query, reason = heuristic("and how long does that take?", COST)
    assert query == "and how long does that take? (shipping cost)"
    assert reason == "opener"


def test_a_pronoun_without_a_subject_of_its_own_is_a_follow_up():
    query, reason = heuristic("is it free?", [("user", "what about express delivery")])
    assert query == "is it free? (express delivery)"
    assert reason == "pronoun"


@pytest.mark.parametrize(
    "text,history",
    [
        ("How do I reset my password?", COST),
        ("and how long does that take?", []),
        ("and how long does that take?", [("ai", "Hi! How can I help?")]),
        ("Which payment methods do you accept for orders shipped abroad to Canada?", COST),
    ],
    ids=["stands alone", "no history", "no earlier question", "long"],
)
def test_other_messages_are_left_as_they_are(text, history):
    assert heuristic(text, history)[0] == text


@pytest.mark.django_db
def test_a_follow_up_is_answered_in_the_context_of_the_conversation(shop_bot, ask):
    _, final = ask(shop_bot, "and how long does that take?", history=COST)

    assert final["trace"]["query"] == "and how long does that take?"
    assert final["trace"]["rewritten_query"] == "and how long does that take? (shipping cost)"
    assert final["citations"][0]["title"] == "How long does shipping take?"
    assert final["text"].startswith("Standard shipping takes 3 to 5 business days")


@pytest.mark.django_db
def test_the_llm_rewrites_with_the_conversation_in_view(llm_bot, llm_server, ask):
    llm_server.script("complete", Reply(text="How long does shipping take?"))
    llm_server.script("stream", Reply(text="Standard shipping takes 3 to 5 business days [1]."))

    _, final = ask(
        llm_bot, "and that?", history=COST, summary="The customer ordered a kettle last week."
    )

    [request] = llm_server.requests_of("complete")
    assert "user: How much does shipping cost?" in request["messages"][1]["content"]
    assert "ordered a kettle" in request["messages"][1]["content"]
    assert request["messages"][1]["content"].endswith("Last message: and that?")
    assert final["trace"]["rewrite"]["method"] == "llm"
    assert final["trace"]["rewritten_query"] == "How long does shipping take?"
    stream = llm_server.requests_of("stream")[0]
    assert stream["messages"][-1] == {"role": "user", "content": "and that?"}, (
        "the answer is written to the customer's own words"
    )
    assert [m["role"] for m in stream["messages"][1:]] == ["user", "assistant", "user"]


@pytest.mark.django_db
def test_a_failed_rewrite_falls_back_to_the_heuristic(llm_bot, llm_server, ask):
    llm_server.script("complete", Reply(status=500))

    _, final = ask(llm_bot, "and how long does that take?", history=COST)

    assert final["trace"]["rewrite"]["method"] == "heuristic"
    assert "http_500" in final["trace"]["rewrite_fallback"]
    assert final["trace"]["rewritten_query"] == "and how long does that take? (shipping cost)"
    assert final["trace"]["answer_method"] == "extractive", "the server is down for this turn"
    assert llm_server.requests_of("stream") == []
