"""The LLM path, through the real `openai` client against a local server: streaming, citations,
the prompt, and every way the LLM can fail."""

import pytest

from conversations.pipeline.answer import BLOCKED_TEXT
from conversations.pipeline.generate import INCOMPLETE, split
from conversations.tests.openai_server import Reply
from knowledge.models import Chunk

pytestmark = pytest.mark.django_db

SHIPPING = "Standard shipping takes 3 to 5 business days [1]. Express arrives the next day [1]."
EXTRACTIVE = "Standard shipping takes 3 to 5 business days within the country."


def test_it_streams_a_grounded_answer_with_citations_mapped_to_chunks(llm_bot, llm_server, ask):
    llm_server.script("stream", Reply(text=SHIPPING))

    tokens, final = ask(llm_bot, "How long does shipping take?")

    assert final["text"] == SHIPPING
    assert tokens == [
        "Standard shipping takes 3 to 5 business days [1]. ",
        "Express arrives the next day [1].",
    ], "sentence by sentence, each checked before it ships"
    assert final["outcome"] == "answered"
    assert final["trace"]["answer_method"] == "llm"
    [citation] = final["citations"]
    first_source = final["trace"]["sources"][0]
    assert citation["n"] == 1 and citation["chunk_id"] == first_source
    assert Chunk.objects.get(pk=first_source).document.title == "How long does shipping take?"
    assert citation["title"] == "How long does shipping take?"


def test_the_prompt_holds_only_the_retrieved_chunks(llm_bot, llm_server, ask):
    llm_server.script("stream", Reply(text=SHIPPING))

    _, final = ask(llm_bot, "How long does shipping take?")

    [request] = llm_server.requests_of("stream")
    assert request["model"] == "acme-test-model"
    assert request["_auth"] == "Bearer sk-acme-test"
    assert request["stream_options"] == {"include_usage": True}
    system = request["messages"][0]["content"]
    assert system.startswith(llm_bot.persona)
    assert request["messages"][-1] == {"role": "user", "content": "How long does shipping take?"}
    sources = final["trace"]["sources"]
    retrieved = {r["chunk_id"] for r in final["trace"]["retrieved"]}
    assert sources and set(sources) <= retrieved
    for chunk in Chunk.objects.filter(bot=llm_bot).exclude(kind__in=["title", "pattern"]):
        answer_text = chunk.text.split("\nA: ", 1)[-1]
        assert (answer_text in system) == (chunk.pk in sources), chunk.text[:40]
    assert "[1] How long does shipping take?" in system


def test_it_records_model_tokens_and_timings(llm_bot, llm_server, ask):
    llm_server.script(
        "stream", Reply(text=SHIPPING, usage={"prompt_tokens": 310, "completion_tokens": 21})
    )

    _, final = ask(llm_bot, "How long does shipping take?")

    trace = final["trace"]
    assert trace["model"] == "acme-test-model"
    calls = {call["step"]: call for call in trace["llm_calls"]}
    assert calls["answer"]["prompt_tokens"] == 310
    assert calls["answer"]["completion_tokens"] == 21
    assert calls["answer"]["first_token_ms"] <= calls["answer"]["ms"]
    assert trace["tokens"] == {"prompt": 310 + 42, "completion": 21 + 7}  # + the classifier's
    assert trace["timings_ms"]["first_token"] <= trace["timings_ms"]["total"]


def test_a_citation_of_a_chunk_that_was_not_retrieved_is_dropped(llm_bot, llm_server, ask):
    llm_server.script(
        "stream", Reply(text="Standard shipping takes 3 to 5 business days [1][7]. It is fast [7].")
    )

    tokens, final = ask(llm_bot, "How long does shipping take?")

    assert len(final["trace"]["sources"]) < 7
    assert final["text"] == "Standard shipping takes 3 to 5 business days [1]. It is fast."
    assert "[7]" not in "".join(tokens)
    assert final["trace"]["guardrails"]["dropped_citations"] == [7, 7]
    assert [c["n"] for c in final["citations"]] == [1]


def test_an_answer_citing_only_missing_sources_falls_back_to_the_extract(llm_bot, llm_server, ask):
    llm_server.script("stream", Reply(text="Shipping takes two weeks [7]. Always [9]."))

    tokens, final = ask(llm_bot, "How long does shipping take?")

    assert len(tokens) == 1, "nothing of the ungrounded answer shipped"
    assert final["text"].startswith(EXTRACTIVE)
    assert "two weeks" not in final["text"]
    assert final["trace"]["fallback"] == {"reason": "no valid citation", "to": "extractive"}
    assert final["trace"]["answer_method"] == "extractive"
    assert final["citations"][0]["title"] == "How long does shipping take?"


def test_an_llm_that_does_not_know_offers_a_person(llm_bot, llm_server, ask):
    text = "I don't know the answer to that. Would you like me to connect you with a person?"
    llm_server.script("stream", Reply(text=text))

    _, final = ask(llm_bot, "How long does shipping take?")

    assert final["text"] == text
    assert final["outcome"] == "handoff_proposed"
    assert final["extras"]["offer_human"] is True
    assert final["citations"] == []
    assert final["trace"]["category"] == "out_of_scope"  # escalation rules can target it


def test_a_timeout_before_the_first_token_falls_back_to_the_extract(llm_bot, llm_server, ask):
    llm_server.script("stream", Reply(text=SHIPPING, delay=2))  # LLM_TIMEOUT is 1 s

    tokens, final = ask(llm_bot, "How long does shipping take?")

    assert len(tokens) == 1
    assert final["text"].startswith(EXTRACTIVE)
    assert final["outcome"] == "answered"
    assert final["trace"]["fallback"] == {"reason": "timeout", "to": "extractive"}
    assert "timeout" in final["trace"]["generate"]["error"]
    assert final["trace"]["timings_ms"]["total"] < 1900


def test_a_stall_after_a_sentence_keeps_what_shipped(llm_bot, llm_server, ask):
    # The role chunk, nine words to "[1]. ", then "Express " starts the next sentence; silence.
    llm_server.script("stream", Reply(text=SHIPPING, stall_after=11, stall=2))

    tokens, final = ask(llm_bot, "How long does shipping take?")

    assert tokens == ["Standard shipping takes 3 to 5 business days [1]. "]
    assert final["text"] == tokens[0], "nothing appended that the customer did not see"
    assert final["extras"]["disclaimer"] == INCOMPLETE
    assert final["requires_followup"] is True
    assert final["trace"]["fallback"] == {"reason": "timeout", "kept": "sentences already sent"}
    assert [c["n"] for c in final["citations"]] == [1]


def test_a_server_error_falls_back_to_the_extract(llm_bot, llm_server, ask):
    llm_server.script("stream", Reply(status=500))

    _, final = ask(llm_bot, "How long does shipping take?")

    assert final["text"].startswith(EXTRACTIVE)
    assert final["trace"]["fallback"]["reason"] == "http_500"


@pytest.mark.parametrize(
    "reply,reason",
    [
        (Reply(text=SHIPPING, malformed=True), "malformed"),
        (Reply(text=SHIPPING, cut_after=4), "connection"),
    ],
    ids=["malformed", "cut"],
)
def test_a_broken_stream_falls_back_to_the_extract(llm_bot, llm_server, ask, reply, reason):
    llm_server.script("stream", reply)

    _, final = ask(llm_bot, "How long does shipping take?")

    assert final["text"].startswith(EXTRACTIVE)
    assert final["trace"]["fallback"]["reason"] == reason


def test_an_unreachable_llm_is_not_asked_twice_in_a_turn(llm_bot, llm_server, ask):
    llm_server.script("tool", Reply(status=503))

    _, final = ask(llm_bot, "How long does shipping take?")

    assert [r["_path"] for r in llm_server.requests] == ["/v1/chat/completions"]
    assert final["trace"]["classify_method"] != "llm"
    assert "http_503" in final["trace"]["classify_fallback"]
    assert final["text"].startswith(EXTRACTIVE)
    assert final["trace"]["answer_method"] == "extractive"


def test_a_forbidden_phrase_blocks_the_answer_before_any_of_it_ships(llm_bot, llm_server, ask):
    llm_bot.forbidden_phrases = "refund guaranteed\nwe  guarantee a refund"
    llm_bot.save(update_fields=["forbidden_phrases"])
    llm_server.script(
        "stream", Reply(text="We GUARANTEE\na refund on every order [1]. Shipping is fast [1].")
    )

    tokens, final = ask(llm_bot, "How long does shipping take?")

    assert "guarantee" not in "".join(tokens).lower()
    assert final["text"] == BLOCKED_TEXT
    assert final["handoff"] is True
    assert final["outcome"] == "handoff"
    assert "Guardrail" in final["handoff_reason"] and "forbidden phrase" in final["handoff_reason"]
    assert final["trace"]["guardrails"]["blocked"] is True
    assert final["trace"]["guardrails"]["forbidden_phrase"] == "we guarantee a refund"


def test_a_forbidden_phrase_later_in_the_answer_stops_there(llm_bot, llm_server, ask):
    llm_bot.forbidden_phrases = "we guarantee a refund"
    llm_bot.save(update_fields=["forbidden_phrases"])
    llm_server.script(
        "stream",
        Reply(text="Standard shipping takes 3 to 5 business days [1]. We guarantee a refund [1]."),
    )

    tokens, final = ask(llm_bot, "How long does shipping take?")

    assert tokens[0] == "Standard shipping takes 3 to 5 business days [1]. "
    assert "guarantee" not in "".join(tokens).lower()
    assert final["text"] == tokens[0] + "\n\n" + BLOCKED_TEXT
    assert final["handoff"] is True
    assert [c["n"] for c in final["citations"]] == [1]


def test_it_redacts_data_that_is_not_the_customers_own(llm_bot, llm_server, ask):
    llm_server.script(
        "stream",
        Reply(
            text=(
                "We will write to bob@example.com and to jane.doe@example.org [1]. "
                "Card 4111 1111 1111 1111 was charged, not 4111-1111-1111-1112 [1]. "
                "IBAN GB82 WEST 1234 5698 7654 32 and account 12345678901 are on file [1]."
            )
        ),
    )

    tokens, final = ask(llm_bot, "My email is bob@example.com. How long does shipping take?")

    text = final["text"]
    assert "bob@example.com" in text, "the customer's own address may be repeated to them"
    assert "jane.doe@example.org" not in "".join(tokens)
    assert "4111 1111 1111 1111" not in text, "a Luhn-valid card number"
    assert "4111-1111-1111-1112" in text, "not a card number: the Luhn check fails"
    assert "GB82" not in text and "12345678901" not in text
    assert text.count("[redacted]") == 4
    assert final["trace"]["guardrails"]["redactions"] == ["email", "card", "iban", "account"]


def test_sentences_end_where_the_next_one_starts():
    assert split("Shipping is free [1]. Ret") == (["Shipping is free [1]. "], "Ret")
    assert split("It costs $4.95 per order. [2] Next") == (
        ["It costs $4.95 per order. [2] "],
        "Next",
    )
    assert split("Done. [") == ([], "Done. ["), "a [ may still be this sentence's citation"
    assert split("First line\nSecond") == (["First line\n"], "Second")
