"""Documents into chunks: structure kept, sizes bounded, overlap inside a section only."""

from pathlib import Path

import pytest

from knowledge.chunking import ChunkDraft, chunk_document, count_tokens
from knowledge.parsers import ParsedDocument, parse_upload

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_doc(name: str) -> ParsedDocument:
    return parse_upload(filename=name, data=(FIXTURES / name).read_bytes())[0]


def article(body: str, title: str = "Help") -> ParsedDocument:
    return ParsedDocument(external_id="a.md", title=title, body=body)


def sentences(n: int, topic: str = "refund") -> str:
    return " ".join(
        f"Sentence {i} explains the {topic} rule number {i} in detail." for i in range(n)
    )


def assert_well_formed(chunks: list[ChunkDraft], target: int, min_tokens: int) -> None:
    assert [c.position for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.text.strip() and c.text == c.text.strip()
        assert count_tokens(c.text) <= target + min_tokens


# --- Token counting ---------------------------------------------------------------------------
def test_it_counts_words_and_punctuation_as_tokens():
    assert count_tokens("") == 0
    assert count_tokens("Where is my refund?") == 5
    assert count_tokens("e-mail") == 3


def test_it_counts_long_words_as_several_pieces():
    assert count_tokens("internationalisation") == 3


# --- Intents and FAQs -------------------------------------------------------------------------
def test_it_makes_one_pattern_chunk_per_intent_pattern_without_the_title():
    intent = fixture_doc("intents.json")

    chunks = chunk_document(intent)

    assert [(c.position, c.kind, c.text, c.embed_text, c.heading) for c in chunks] == [
        (0, "pattern", "When will my card arrive?", "When will my card arrive?", ""),
        (1, "pattern", "My new card has not come yet", "My new card has not come yet", ""),
        (
            2,
            "pattern",
            "How long does card delivery take?",
            "How long does card delivery take?",
            "",
        ),
    ]


def test_it_never_chunks_intent_responses():
    intent = fixture_doc("intents.json")

    texts = {c.text for c in chunk_document(intent)}

    assert not texts & set(intent.responses)


def test_it_keeps_a_short_faq_in_one_question_and_answer_chunk():
    faq = parse_upload(filename="faq.csv", data=(FIXTURES / "faq.csv").read_bytes())[0]

    (chunk,) = chunk_document(faq)

    assert chunk.kind == "faq"
    assert chunk.text == (
        "Q: How long does shipping take?\n"
        "A: Standard shipping takes 3 to 5 business days. Express arrives the next business day."
    )
    assert chunk.embed_text == chunk.text


def test_it_splits_a_long_faq_answer_and_embeds_each_passage_with_its_question():
    question = "How do refunds work for orders paid by card?"
    faq = ParsedDocument(external_id="q", title=question, body=sentences(40), kind="faq")

    chunks = chunk_document(faq, target_tokens=120, overlap_tokens=20, min_tokens=20)

    assert len(chunks) > 2
    assert_well_formed(chunks, 120, 20)
    for c in chunks:
        assert c.kind == "faq"
        assert not c.text.startswith("Q:")
        assert c.embed_text == f"Q: {question}\n{c.text}"
        assert count_tokens(c.embed_text) <= 120 + 20
    assert chunks[0].text.startswith("Sentence 0 explains")
    assert chunks[-1].text.endswith("rule number 39 in detail.")


# --- Articles: structure ----------------------------------------------------------------------
def test_it_follows_the_headings_of_a_help_article():
    chunks = chunk_document(fixture_doc("returns-and-refunds.md"))

    assert [c.heading for c in chunks] == [
        "",
        "Who can return an item",
        "How to start a return",
        "How to start a return > Returning a faulty item",
        "How to start a return > Returning a gift",
        "Refunds > Refund timing",
        "Refunds > Refund methods",
        "Exchanges",
    ]
    assert all(c.kind == "passage" for c in chunks)
    assert_well_formed(chunks, 300, 30)


def test_it_leaves_the_title_heading_out_of_the_heading_path_and_the_text():
    chunks = chunk_document(fixture_doc("returns-and-refunds.md"))

    assert chunks[0].heading == ""
    assert chunks[0].text.startswith("We want you to love what you ordered.")
    assert not any("# " in c.text or "Returns and refunds" in c.heading for c in chunks)


def test_it_prefixes_title_and_heading_path_in_the_embedded_text_only():
    chunks = chunk_document(fixture_doc("returns-and-refunds.md"))
    timing = next(c for c in chunks if c.heading == "Refunds > Refund timing")

    assert timing.embed_text == f"Returns and refunds\nRefunds > Refund timing\n{timing.text}"
    assert timing.text.startswith("We inspect returned items within 3 working days")
    assert chunks[0].embed_text == f"Returns and refunds\n{chunks[0].text}"


def test_it_keeps_a_list_together_when_it_fits():
    chunks = chunk_document(
        fixture_doc("returns-and-refunds.md"), target_tokens=120, overlap_tokens=25, min_tokens=20
    )
    steps = [c for c in chunks if "1. Sign in and open" in c.text]

    assert len(steps) == 1
    for n in range(1, 6):
        assert f"\n{n}. " in steps[0].text
    assert (
        "3. Pick the items you are sending back and tell us why. The reason helps us improve, "
        "and it\n   decides who pays for the postage."
    ) in steps[0].text


def test_it_splits_a_long_list_between_items():
    items = [f"- Step {i}: open the menu, choose option {i} and confirm it." for i in range(30)]
    doc = article("## Setup\n\n" + "\n".join(items))

    chunks = chunk_document(doc, target_tokens=80, overlap_tokens=0, min_tokens=10)

    assert len(chunks) > 3
    assert_well_formed(chunks, 80, 10)
    for c in chunks:
        assert c.heading == "Setup"
        assert all(line in items for line in c.text.split("\n"))
    assert [line for c in chunks for line in c.text.split("\n")] == items


def test_it_splits_an_oversized_paragraph_at_sentence_boundaries():
    doc = article(sentences(30))

    chunks = chunk_document(doc, target_tokens=60, overlap_tokens=0, min_tokens=10)

    assert len(chunks) > 3
    assert_well_formed(chunks, 60, 10)
    for c in chunks:
        assert c.text.startswith("Sentence ") and c.text.endswith(" in detail.")


def test_it_cuts_a_run_of_text_without_sentence_ends_between_words():
    doc = article(" ".join(f"word{i}" for i in range(500)))

    chunks = chunk_document(doc, target_tokens=100, overlap_tokens=0, min_tokens=10)

    assert_well_formed(chunks, 100, 10)
    assert " ".join(c.text for c in chunks) == doc.body


def test_it_keeps_a_code_block_and_a_table_intact():
    body = (
        "## Install\n\n```sh\npip install acme\n\nacme init\n```\n\n"
        "| Plan | Price |\n| --- | --- |\n| Basic | 5 |\n| Pro | 20 |"
    )

    (chunk,) = chunk_document(article(body), min_tokens=5)

    assert chunk.text == body.split("\n\n", 1)[1]
    assert chunk.heading == "Install"


# --- Articles: overlap and small fragments ----------------------------------------------------
def test_the_next_chunk_starts_with_the_end_of_the_previous_one_in_the_same_section():
    doc = article("## Refund timing\n\n" + sentences(30))

    chunks = chunk_document(doc, target_tokens=80, overlap_tokens=20, min_tokens=10)

    assert len(chunks) > 2
    assert_well_formed(chunks, 80, 10)
    for before, after in zip(chunks, chunks[1:], strict=False):
        last_sentence = before.text.rsplit(" Sentence ", 1)[1]
        assert after.text.startswith("Sentence " + last_sentence)
        assert count_tokens(last_sentence) <= 20 * 3 // 2


def test_overlap_never_crosses_into_another_section():
    doc = article(
        f"## Cards\n\n{sentences(12, 'card')}\n\n## Transfers\n\n{sentences(12, 'transfer')}"
    )

    chunks = chunk_document(doc, target_tokens=60, overlap_tokens=20, min_tokens=10)

    assert {c.heading for c in chunks} == {"Cards", "Transfers"}
    for c in chunks:
        if c.heading == "Transfers":
            assert "card" not in c.text
        else:
            assert "transfer" not in c.text
    first_transfer = next(c for c in chunks if c.heading == "Transfers")
    assert first_transfer.text.startswith("Sentence 0 explains the transfer rule")


def test_it_merges_a_tiny_trailing_fragment_into_its_own_section():
    doc = article(f"## Fees\n\n{sentences(5)}\n\nThat is all.")

    chunks = chunk_document(doc, target_tokens=60, overlap_tokens=0, min_tokens=15)

    assert all(count_tokens(c.text) >= 15 for c in chunks)
    assert chunks[-1].text.endswith("in detail.\n\nThat is all.")
    assert_well_formed(chunks, 60, 15)


def test_it_merges_a_tiny_section_into_its_neighbour_with_its_heading():
    body = f"## Returns\n\n{sentences(3)}\n\n## Contact\n\nE-mail help@example.com."

    chunks = chunk_document(article(body), target_tokens=200, overlap_tokens=20, min_tokens=15)

    (chunk,) = chunks
    assert chunk.heading == "Returns"
    assert chunk.text.endswith("in detail.\n\nContact\nE-mail help@example.com.")


def test_it_keeps_a_small_section_alone_when_merging_would_overflow():
    body = f"## A\n\n{sentences(6)}\n\n## Contact\n\nE-mail us.\n\n## B\n\n{sentences(6)}"

    chunks = chunk_document(article(body), target_tokens=80, overlap_tokens=0, min_tokens=10)

    assert [c.heading for c in chunks] == ["A", "Contact", "B"]
    assert chunks[1].text == "E-mail us."


def test_a_document_shorter_than_min_tokens_is_still_one_chunk():
    (chunk,) = chunk_document(article("Call us."))

    assert (chunk.position, chunk.text, chunk.kind) == (0, "Call us.", "passage")


def test_it_makes_no_chunks_for_an_article_without_text():
    assert chunk_document(article("# Help\n\n## Empty section\n\n")) == []


# --- Whole documents --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["returns-and-refunds.md", "payment-methods.html", "delivery-times.txt", "router-guide.pdf"],
)
@pytest.mark.parametrize(
    ("target", "overlap", "min_tokens"), [(300, 40, 30), (80, 15, 15), (40, 10, 8)]
)
def test_every_fixture_chunks_within_bounds(name, target, overlap, min_tokens):
    doc = fixture_doc(name)

    chunks = chunk_document(
        doc, target_tokens=target, overlap_tokens=overlap, min_tokens=min_tokens
    )

    assert chunks
    assert_well_formed(chunks, target, min_tokens)
    assert all(c.embed_text.startswith(doc.title + "\n") for c in chunks)


def test_it_is_deterministic():
    doc = fixture_doc("returns-and-refunds.md")

    first = chunk_document(doc, target_tokens=90, overlap_tokens=20, min_tokens=15)

    assert chunk_document(doc, target_tokens=90, overlap_tokens=20, min_tokens=15) == first


def test_it_slices_a_word_longer_than_the_budget():
    url = "https://example.com/track?" + "&".join(f"p{i}=v{i}" for i in range(400))
    doc = article(f"Open this link:\n{url}")

    chunks = chunk_document(doc, target_tokens=100, overlap_tokens=0, min_tokens=10)

    assert len(chunks) > 5
    assert_well_formed(chunks, 100, 10)
    assert "".join("".join(c.text.split()) for c in chunks) == "".join(doc.body.split())


def test_it_stays_within_bounds_when_the_minimum_exceeds_the_target():
    doc = fixture_doc("returns-and-refunds.md")

    chunks = chunk_document(doc, target_tokens=20, overlap_tokens=40, min_tokens=30)

    assert len(chunks) > 20
    assert_well_formed(chunks, 20, 10)
