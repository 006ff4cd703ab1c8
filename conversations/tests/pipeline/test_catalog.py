"""Suggestion chips are questions a customer could send: never an article's bare title, never an
intent's tag."""

import json

import pytest

from conversations.pipeline.catalog import (
    article_question,
    as_question,
    knowledge_version,
    suggestions,
)
from knowledge import services


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("where is my order", "Where is my order?"),
        ("what time does support close", "What time does support close?"),
        ("can I call you on Sunday", "Can I call you on Sunday?"),
        ("How to reset a password", "How do I reset a password?"),
        ("When are you open?", "When are you open?"),
        # Headings that open with a question word but state a subject are not questions.
        ("What the warranty covers", ""),
        ("Where we ship", ""),
        ("support hours", ""),
        ("Shipping", ""),
    ],
)
def test_what_reads_as_a_question(text, question):
    assert as_question(text) == question


def test_an_article_is_asked_about_by_its_own_question_or_its_subject():
    assert article_question("How do refunds work?", "") == "How do refunds work?"
    assert article_question("Passwords", "## How to reset a password\n\nOpen Settings.") == (
        "How do I reset a password?"
    )
    body = "Our plans differ in seats. Which plan is right for a team of five? The Team plan."
    assert article_question("Plans", body) == "Which plan is right for a team of five?"
    # Nothing to go on: a question about its subject, the title read mid-sentence.
    assert article_question("Warranty and repairs", "Two years.") == (
        "What should I know about warranty and repairs?"
    )
    assert article_question("Acme Pro setup", "Plug it in.") == (
        "What should I know about Acme Pro setup?"
    )


@pytest.mark.django_db
def test_an_intent_is_suggested_by_its_most_question_like_pattern(acme_bot):
    intents = {
        "intents": [
            {"tag": "greeting", "patterns": ["hi", "hello there"], "responses": ["Hi!"]},
            {
                "tag": "order_status",
                "patterns": ["my parcel is late", "where is my order", "is it shipped?"],
                "responses": ["Track it under Orders."],
            },
            {
                "tag": "refund_status",
                "patterns": ["refund not received", "has my refund been sent?"],
                "responses": ["Refunds take 5 days."],
            },
            {"tag": "complaint", "patterns": ["this is rubbish"], "responses": ["Sorry!"]},
        ]
    }
    services.source_upload(
        bot=acme_bot, filename="intents.json", data=json.dumps(intents).encode(), sync_now=True
    )

    chips = suggestions(acme_bot, knowledge_version(acme_bot), limit=12)

    # A pattern written as a question first; an intent with none (the complaint) is left out.
    assert chips == ["Is it shipped?", "Has my refund been sent?"]
    assert not any("_" in chip for chip in chips), "never a tag"
    assert not any(chip.lower().startswith(("hi", "hello")) for chip in chips)
