"""The pipeline without an LLM: what Acme's bot answers, and how, from its demo knowledge."""

import pytest

from knowledge.models import Chunk

pytestmark = pytest.mark.django_db


def test_it_answers_from_the_faq_with_a_citation_to_the_right_chunk(shop_bot, ask, settings):
    tokens, final = ask(shop_bot, "How long does shipping take?")

    assert len(tokens) == 1, "an extractive answer ships whole"
    assert final["outcome"] == "answered"
    assert final["text"].startswith("Standard shipping takes 3 to 5 business days")
    assert "Q: " not in final["text"], "the FAQ's answer, not its question"
    assert final["text"].endswith("Source: How long does shipping take?")
    [citation] = final["citations"]
    chunk = Chunk.objects.get(pk=citation["chunk_id"])
    assert chunk.document.title == "How long does shipping take?"
    assert citation == {
        "n": 1,
        "chunk_id": chunk.pk,
        "document_id": chunk.document_id,
        "title": "How long does shipping take?",
        "url": "",
        "heading": "",
        # No address of its own: the FAQ's public help page on this site.
        "link": f"{settings.SITE_URL}/help/acme/acme-support/{chunk.document_id}"
        "-how-long-does-shipping-take/",
    }
    assert final["confidence"] == final["trace"]["gate"]["score"]
    assert final["trace"]["answer_method"] == "extractive"
    assert final["handoff"] is False and final["priority"] is None


def test_an_article_answer_quotes_the_relevant_sentences_and_its_url(shop_bot, ask):
    _, final = ask(shop_bot, "How much does a repair cost after the warranty?")

    assert final["outcome"] == "answered"
    assert final["text"].startswith("Out-of-warranty repairs cost a flat $39 plus parts.")
    assert "(https://acme.example/help/warranty)" in final["text"]
    [source] = final["citations"]
    assert source["url"] == "https://acme.example/help/warranty"
    assert source["heading"] == "Repairs after the warranty"
    # Its own page, scrolled to the section's heading where browsers support text fragments.
    assert source["link"] == (
        "https://acme.example/help/warranty#:~:text=Repairs%20after%20the%20warranty"
    )


def test_it_answers_with_the_matched_intents_response(shop_bot, ask):
    _, final = ask(shop_bot, "what are your opening hours on saturday?")

    assert final["trace"]["gate"]["decision"] == "intent"
    assert final["trace"]["intent"]["tag"] == "opening_hours"
    assert final["text"].startswith("Our support team is available Monday to Friday")
    assert final["trace"]["answer_method"] == "intent"
    assert final["outcome"] == "answered"
    # With its source, as a quoted passage has.
    [source] = final["citations"]
    assert source["document_id"] == final["trace"]["intent"]["document_id"]
    assert source["title"].startswith("Opening hours")
    assert final["text"].endswith(f"Source: {source['title']}")


def test_it_greets_with_the_bots_own_greeting_intent(shop_bot, ask):
    _, final = ask(shop_bot, "hello!")

    assert final["trace"]["category"] == "greeting"
    assert final["text"].startswith("Hi! I'm Acme's assistant.")
    assert final["outcome"] == "answered"


def test_it_says_youre_welcome_to_thanks(acme_bot, ask):
    _, final = ask(acme_bot, "thanks a lot!")  # a bot without intents: the built-in reply

    assert final["trace"]["subtype"] == "thanks"
    assert final["text"] == "You're welcome! Is there anything else I can help with?"


def test_it_asks_to_rephrase_gibberish_with_topic_suggestions(shop_bot, ask):
    _, final = ask(shop_bot, "asdkjh qwpoe zzz")

    assert final["trace"]["category"] == "nonsense"
    assert final["outcome"] == "clarified"
    assert final["text"].startswith("Sorry, I didn't quite catch that.")
    suggestions = final["extras"]["suggestions"]
    assert suggestions[:2] == ["How long does shipping take?", "What is your return policy?"]
    # Questions a customer could send, never a title or a tag: the opening_hours intent's
    # pattern that is a question, the warranty article's "How to make a warranty claim".
    assert suggestions[2:] == ["When are you open?", "How do I make a warranty claim?"]
    assert all(s.endswith("?") for s in suggestions)
    assert "“How long does shipping take?”" in final["text"]
    assert final["trace"]["retrieved"] == [], "nothing to look up"


def test_it_deflects_off_topic_chit_chat(shop_bot, ask):
    _, final = ask(shop_bot, "what's the weather like in Paris today?")

    assert final["trace"]["category"] == "irrelevant"
    assert final["outcome"] == "deflected"
    assert "I answer questions about Acme" in final["text"]
    assert final["extras"]["suggestions"]
    assert final["citations"] == []
    # A bar on similarity can take a real question for chit-chat: a person stays one tap away.
    assert final["extras"]["offer_human"] is True
    assert not final["requires_followup"]


def test_off_topic_by_embeddings_when_no_rule_fires(shop_bot, ask):
    _, final = ask(shop_bot, "who is the best basketball player ever")

    assert final["trace"]["category"] == "irrelevant"
    assert final["trace"]["classify_method"] == "embeddings"
    scores = final["trace"]["classify_scores"]
    assert scores["prototypes"]["irrelevant"] > scores["knowledge"]


def test_it_hands_off_when_customer_asks_for_a_human(shop_bot, ask):
    _, final = ask(shop_bot, "I want to talk to a human")

    assert final["trace"]["category"] == "human"
    assert final["handoff"] is True
    assert final["outcome"] == "handoff"
    assert final["priority"] == "medium"
    assert final["handoff_reason"] == "Customer asked for a person"
    assert "connect you with a person" in final["text"]


def test_a_hacked_account_is_offered_a_person_urgently(shop_bot, ask):
    _, final = ask(shop_bot, "my account was hacked")

    assert (final["trace"]["category"], final["trace"]["subtype"]) == ("high_stakes", "security")
    assert final["outcome"] == "handoff_proposed"
    assert final["extras"]["offer_human"] is True
    assert final["priority"] == "urgent"
    assert final["handoff"] is False, "offered, not forced"
    assert final["requires_followup"] is True
    assert final["text"].startswith("I'm sorry, that sounds worrying.")
    assert final["text"].endswith("Would you like me to connect you with a person?")


def test_a_legal_threat_is_offered_a_person_urgently(shop_bot, ask):
    _, final = ask(shop_bot, "I'm going to sue you")

    assert final["trace"]["subtype"] == "legal"
    assert final["outcome"] == "handoff_proposed"
    assert final["priority"] == "urgent"
    assert final["extras"]["offer_human"] is True


def test_a_cancellation_gets_empathy_the_help_article_and_an_offer(shop_bot, ask):
    _, final = ask(shop_bot, "I want to close my account")

    assert final["trace"]["subtype"] == "cancellation"
    assert final["priority"] == "high"
    assert "Open Settings, then Privacy, then Delete account." in final["text"]
    assert final["citations"][0]["title"] == "How do I delete my account?"
    assert final["outcome"] == "handoff_proposed"


def test_yes_after_an_offer_connects_to_a_person(shop_bot, ask):
    _, offer = ask(shop_bot, "someone made an unauthorised charge on my card")
    assert offer["trace"]["subtype"] == "billing_dispute"

    history = [("user", "someone made an unauthorised charge on my card"), ("ai", offer["text"])]
    _, final = ask(shop_bot, "yes please", history=history)

    assert final["handoff"] is True
    assert final["outcome"] == "handoff"


def test_weak_evidence_gets_a_disclaimer_and_no_sources(shop_bot, ask):
    _, final = ask(shop_bot, "can I pay with bitcoin?")

    gate = final["trace"]["gate"]
    assert gate["decision"] == "weak"
    assert gate["weak"] <= gate["score"] < gate["strong"]
    assert final["outcome"] == "low_confidence"
    assert final["extras"]["disclaimer"]
    assert final["citations"] == []
    assert "Source:" not in final["text"]
    assert final["text"].startswith("I'm not completely sure, but this may help:")
    assert final["requires_followup"] is True


def test_a_question_the_knowledge_does_not_cover_is_admitted_with_a_person_offered(shop_bot, ask):
    _, final = ask(shop_bot, "is there a student discount?")

    assert final["trace"]["category"] == "out_of_scope"
    assert final["trace"]["gate"]["decision"] == "none"
    # Said plainly, with a person offered at once: no "could you tell me more?" loop.
    assert final["outcome"] == "handoff_proposed"
    assert final["text"].startswith("Sorry, I don't have information about that")
    assert final["text"].endswith("Would you like me to connect you with a person?")
    assert "?" not in final["text"].removesuffix("Would you like me to connect you with a person?")
    assert final["extras"]["offer_human"] is True
    assert final["handoff"] is False
    assert 1 <= len(final["extras"]["suggestions"]) <= 2
    assert final["citations"] == [] and final["confidence"] is None
    assert final["requires_followup"] is True  # a question the knowledge is missing
    assert final["handoff_reason"] == "The bot's knowledge does not cover the question"


def test_a_second_miss_in_a_row_keeps_the_offer_and_does_not_loop(shop_bot, ask):
    _, first = ask(shop_bot, "is there a student discount?")
    history = [("user", "is there a student discount?"), ("ai", first["text"])]

    _, second = ask(shop_bot, "do you offer a loyalty programme?", history=history)

    assert second["trace"]["category"] == "out_of_scope"
    assert second["outcome"] == "handoff_proposed" and second["extras"]["offer_human"] is True
    assert second["text"].startswith("I'm afraid I don't have information about that either.")
    assert second["extras"]["suggestions"] == []  # they did not help the first time
    # And "yes" to the standing offer connects.
    history += [("user", "do you offer a loyalty programme?"), ("ai", second["text"])]
    _, yes = ask(shop_bot, "yes please", history=history)
    assert (yes["outcome"], yes["handoff"]) == ("handoff", True)


def test_gibberish_and_chit_chat_are_not_out_of_scope(shop_bot, ask):
    _, gibberish = ask(shop_bot, "asdkjh qwpoe zzz")
    _, chit_chat = ask(shop_bot, "tell me a joke")

    assert (gibberish["trace"]["category"], gibberish["outcome"]) == ("nonsense", "clarified")
    assert (chit_chat["trace"]["category"], chit_chat["outcome"]) == ("irrelevant", "deflected")
    assert not gibberish["extras"]["offer_human"]
    # Chit-chat is not a question the knowledge lacks (no follow-up for the team), but a person
    # is offered all the same, in case the similarity bar took a real question for chit-chat.
    assert chit_chat["extras"]["offer_human"] and not chit_chat["requires_followup"]


def test_markup_in_a_message_is_just_text(shop_bot, ask):
    tokens, final = ask(shop_bot, "<script>alert('x')</script> how long does shipping take?")

    assert final["outcome"] == "answered"
    assert final["text"].startswith("Standard shipping takes 3 to 5 business days")
    assert "<script>" not in "".join(tokens)
    _, alone = ask(shop_bot, "<script>alert(document.cookie)</script>")
    # Not answered: markup alone is gibberish, chit-chat or a question nothing covers.
    assert alone["outcome"] in ("clarified", "deflected", "handoff_proposed")
    assert alone["citations"] == [] and not alone["handoff"]


def test_the_trace_records_every_step_with_timings(shop_bot, ask):
    _, final = ask(shop_bot, "How do I reset my password?")
    trace = final["trace"]

    assert trace["query"] == trace["rewritten_query"] == "How do I reset my password?"
    assert trace["retrieved"][0] == {
        "chunk_id": final["citations"][0]["chunk_id"],
        "document_id": final["citations"][0]["document_id"],
        "kind": "faq",
        "score": trace["retrieved"][0]["score"],
        "dense": trace["retrieved"][0]["dense"],
        "keyword": 0.0,
        "fused": trace["retrieved"][0]["fused"],
    }
    # The order comes from the bot's chosen fusion: its value is recorded for the first hit too.
    assert trace["retrieved"][0]["fused"] > 0
    assert trace["model"] is None and trace["tokens"] == {"prompt": 0, "completion": 0}
    assert trace["guardrails"] == {
        "dropped_citations": [],
        "redactions": [],
        "blocked": False,
        "forbidden_phrase": "",
    }
    timings = trace["timings_ms"]
    assert timings["first_token"] <= timings["total"]
    assert all(value >= 0 for value in timings.values())


def test_a_forbidden_phrase_in_an_extractive_answer_hands_off(shop_bot, ask):
    shop_bot.forbidden_phrases = "Returns are  FREE"
    shop_bot.save(update_fields=["forbidden_phrases"])

    tokens, final = ask(shop_bot, "How do I return an item?")

    assert final["handoff"] is True
    assert final["outcome"] == "handoff"
    assert "Guardrail" in final["handoff_reason"]
    assert "free" not in "".join(tokens).lower()
    assert final["trace"]["guardrails"]["forbidden_phrase"] == "returns are free"


def test_it_offers_a_person_when_the_knowledge_cannot_be_searched(shop_bot, ask, monkeypatch):
    from conversations.pipeline import retrieve
    from knowledge.embeddings import EmbeddingError

    def down(bot, query):
        raise EmbeddingError("openai:text-embedding-3-small: Connection error.")

    monkeypatch.setattr(retrieve, "embed_query", down)

    _, final = ask(shop_bot, "How long does shipping take?")

    assert final["trace"]["gate"]["decision"] == "unavailable"
    assert "Connection error" in final["trace"]["retrieve_error"]
    assert final["outcome"] == "handoff_proposed"
    assert final["extras"]["offer_human"] is True
    assert (
        final["text"]
        == "I can't look that up right now. Would you like me to connect you with a person?"
    )


def test_a_message_that_only_resembles_a_request_for_a_person_gets_an_offer(shop_bot, ask):
    _, final = ask(shop_bot, "is there anyone I could phone")

    assert final["trace"]["category"] == "human"
    assert final["trace"]["classify_method"] == "embeddings"
    assert final["outcome"] == "handoff_proposed"
    assert final["handoff"] is False and final["extras"]["offer_human"] is True
    assert final["text"].endswith("Would you like me to connect you with a person?")
