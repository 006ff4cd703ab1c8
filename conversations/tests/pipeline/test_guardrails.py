"""Step 6: the checks every sentence passes before it ships."""

import pytest

from conversations.pipeline.guardrails import Guard, cited_numbers, iban_valid, luhn_valid


def guard(**kwargs) -> Guard:
    return Guard(**{"forbidden": [], "allowed_from": [], "sources": 3, **kwargs})


@pytest.mark.parametrize(
    "number,valid",
    [("4111111111111111", True), ("4111111111111112", False), ("79927398713", True)],
)
def test_luhn(number, valid):
    assert luhn_valid(number) is valid


def test_iban_check_digits():
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert not iban_valid("GB83 WEST 1234 5698 7654 32")


def test_citations_of_sources_the_answer_was_not_given_are_dropped():
    check = guard(sources=3)

    assert check.check("Shipping is free [2][7]. ").text == "Shipping is free [2]. "
    assert check.check("Always [4, 1].").text == "Always [1]."
    assert check.check("Never [9].").text == "Never."
    assert (check.cited, check.dropped) == ([2, 1], [7, 4, 9])


@pytest.mark.parametrize(
    "text,redacted",
    [
        ("Mail jane@example.org today.", "Mail [redacted] today."),
        ("Card 4111 1111 1111 1111.", "Card [redacted]."),
        ("Card 4111-1111-1111-1111.", "Card [redacted]."),
        ("Order 4111 1111 1111 1112.", "Order 4111 1111 1111 1112."),  # fails Luhn
        ("Pay GB82 WEST 1234 5698 7654 32 now.", "Pay [redacted] now."),
        ("Account 123456789012.", "Account [redacted]."),
        ("Order 10023 ships today.", "Order 10023 ships today."),
        ("Call 1-800-555-0100.", "Call 1-800-555-0100."),
    ],
)
def test_it_redacts_personal_data(text, redacted):
    assert guard().check(text).text == redacted


def test_the_customers_own_data_and_the_sources_may_be_repeated():
    check = guard(
        allowed_from=[
            "I'm Jane@Example.org, card 4111111111111111",
            "Write to help@acme.example for returns.",
        ]
    )

    text = "Jane@example.org, your card 4111 1111 1111 1111; or ask help@acme.example."
    assert check.check(text).text == text
    assert check.redactions == []


def test_a_forbidden_phrase_matches_whatever_the_case_and_spacing():
    check = guard(forbidden=["We guarantee  a refund", ""])

    assert check.check("Returns are free. ").blocked is False
    verdict = check.check("WE GUARANTEE\n a   refund on everything.")
    assert verdict.blocked is True and verdict.text == ""
    assert check.record()["forbidden_phrase"] == "we guarantee a refund"


def test_a_forbidden_phrase_split_across_sentences_is_caught():
    check = guard(forbidden=["Acme Inc. guarantees"])

    assert check.check("Sold by Acme Inc. ").blocked is False
    assert check.check("guarantees delivery.").blocked is True


def test_cited_numbers_in_order_of_first_use():
    assert cited_numbers("A [2]. B [1, 2]. C [3][2].") == [2, 1, 3]
