"""How the answer-level figure grades one answer (conversations/answer_quality.py)."""

from conversations.answer_quality import lead, quoted_text, recall


def test_the_lead_is_the_first_sentence_extended_while_short():
    body = "Yes. Masks must cover the nose and mouth at all times indoors. Wash them daily."
    assert lead(body) == lead("Yes. Masks must cover the nose and mouth at all times indoors.")
    assert "wash" not in lead(body)


def test_the_quote_is_graded_without_the_hedge_or_the_source_line():
    strong = {"outcome": "answered", "text": "Masks cover the nose.\n\nSource: Masks (https://x)"}
    weak = {
        "outcome": "low_confidence",
        "text": "I'm not completely sure, but this may help: Masks cover the nose.",
    }
    assert quoted_text(strong) == quoted_text(weak) == "Masks cover the nose."


def test_a_quote_holding_half_the_leads_words_contains_the_answer():
    words = lead("Refunds reach your card within five business days.")
    assert recall(words, "Your refund reaches the card in five business days.") >= 0.5
    assert recall(words, "Shipping is free over $50.") == 0.0
