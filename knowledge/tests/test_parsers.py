"""Uploads into documents: every format on real-shaped files, every bad input named precisely."""

import json
import time
from pathlib import Path

import pytest

from knowledge.parsers import (
    FORMATS,
    MAX_UPLOAD_BYTES,
    ParsedDocument,
    ParseError,
    detect_format,
    parse_upload,
)

FIXTURES = Path(__file__).parent / "fixtures"


def parse(name: str, **kwargs) -> list[ParsedDocument]:
    return parse_upload(filename=name, data=(FIXTURES / name).read_bytes(), **kwargs)


def error_of(name: str, data: bytes | None = None) -> str:
    with pytest.raises(ParseError) as info:
        parse_upload(filename=name, data=(FIXTURES / name).read_bytes() if data is None else data)
    return str(info.value)


# --- Intents ----------------------------------------------------------------------------------
def test_it_parses_intents_json_into_one_document_per_intent():
    docs = parse("intents.json")

    assert [d.external_id for d in docs] == [
        "card_arrival",
        "lost_or_stolen_card",
        "exchange_rate",
        "greeting",
    ]
    card = docs[0]
    assert card.kind == "intent"
    assert card.title == "Card arrival"
    assert card.category == "cards"
    assert card.url == "https://help.example.com/cards/delivery"
    assert card.responses == [
        "Cards arrive within 5 working days of ordering.",
        "You can track delivery under Cards > Delivery status in the app.",
    ]
    assert card.body == "\n\n".join(card.responses)
    assert docs[3].body == "" and docs[3].responses == []


def test_it_strips_and_deduplicates_patterns_within_an_intent():
    card = parse("intents.json")[0]

    assert card.patterns == [
        "When will my card arrive?",
        "My new card has not come yet",
        "How long does card delivery take?",
    ]


def test_it_keeps_yaml_patterns_like_no_and_off_as_text():
    docs = parse("intents.yaml")

    assert [d.title for d in docs] == ["Cancel order", "Opening hours"]
    assert docs[0].patterns[-2:] == ["no", "off"]
    assert docs[0].body == (
        "You can cancel an order until it ships.\nOpen Orders, pick the order and choose Cancel."
    )
    assert docs[0].category == "orders"
    assert docs[1].responses == ["We are open 9:00 to 17:00, Monday to Friday."]


def test_it_parses_a_large_intents_file_quickly():
    intents = [
        {
            "tag": f"topic_{i}",
            "patterns": [f"How do I do thing {j} for topic {i}?" for j in range(100)],
            "responses": [f"Here is how topic {i} works."],
        }
        for i in range(150)
    ]
    data = json.dumps({"intents": intents}).encode()

    started = time.perf_counter()
    docs = parse_upload(filename="clinc.json", data=data)

    assert time.perf_counter() - started < 2
    assert len(docs) == 150 and sum(len(d.patterns) for d in docs) == 15_000


def test_it_names_the_line_of_malformed_json():
    assert error_of("intents_malformed.json") == 'Line 3, column 39: expected "," (invalid JSON)'


def test_it_names_the_line_of_malformed_yaml():
    message = error_of("bad.yaml", b"intents:\n  - tag: refund\n    patterns: [a, b\n")

    assert message.startswith("Line 4, column 1: ")
    assert message.endswith("(invalid YAML)")


def test_it_names_the_path_of_a_pattern_of_the_wrong_type():
    assert error_of("intents_bad_pattern.yaml") == (
        "intents[0].patterns[1]: must be a string, got a list"
    )


def test_it_requires_patterns_to_be_a_list_of_strings():
    data = b'{"intents": [{"tag": "a", "patterns": ["x"]}, {"tag": "b", "patterns": {"p": 1}}]}'

    assert (
        error_of("x.json", data) == "intents[1].patterns: must be a list of strings, got an object"
    )


def test_it_rejects_an_empty_tag():
    data = b'{"intents": [{"tag": "  ", "patterns": ["hello"]}]}'

    assert error_of("x.json", data) == "intents[0].tag: is empty"


def test_it_rejects_a_missing_tag():
    assert error_of("x.json", b'{"intents": [{"patterns": ["hello"]}]}') == (
        'intents[0]: missing "tag"'
    )


def test_it_rejects_an_intent_without_patterns():
    data = b'{"intents": [{"tag": "refund", "patterns": [" ", ""], "responses": ["Soon."]}]}'

    assert error_of("x.json", data).startswith(
        'intents[0].patterns: intent "refund" has no patterns'
    )


def test_it_names_both_positions_of_a_duplicate_tag_ignoring_case():
    assert error_of("intents_duplicate_tag.json") == (
        'Duplicate intent tag "Refund" (intents[0] and intents[2])'
    )


def test_it_refuses_yaml_aliases():
    data = b"greet: &hi [hello, hi]\nintents:\n  - tag: a\n    patterns: *hi\n"

    assert error_of("x.yaml", data).startswith("Line 4: YAML aliases (*hi) are not supported")


def test_it_rejects_a_json_upload_that_is_not_an_intents_file():
    message = error_of("articles.json", b'[{"id": "1", "title": "A", "body": "B"}]')

    assert 'must be an intents file, {"intents": [...]}, but it holds a list' in message
    assert "JSON Lines (.jsonl)" in message


def test_it_names_the_keys_found_in_a_json_object_without_intents():
    assert 'it has the keys "faq", "version"' in error_of("x.json", b'{"faq": [], "version": 2}')


# --- FAQ CSV ----------------------------------------------------------------------------------
def test_it_parses_a_faq_csv_with_bom_crlf_and_a_multiline_answer():
    docs = parse("faq.csv")

    assert [d.title for d in docs] == [
        "How long does shipping take?",
        "Can I return an item?",
        "How do I reset my password?",
    ]
    assert {d.kind for d in docs} == {"faq"}
    assert docs[0].external_id == "how long does shipping take?"
    assert docs[0].category == "Shipping"
    assert docs[0].url == "https://help.example.com/shipping"
    assert docs[1].body == (
        "You can return any unused item within 30 days of delivery.\n\n"
        "Start the return from Orders > Return an item, print the label and drop the parcel at "
        "any post office."
    )
    assert docs[2].body == "Open Settings, choose Security, then Reset password."


def test_it_detects_a_semicolon_delimited_csv():
    docs = parse("faq_semicolon.csv")

    assert docs[0].title == "Wie lange dauert der Versand?"
    assert docs[0].body == "Der Standardversand dauert 3 bis 5 Werktage, Express einen Tag."
    assert docs[1].category == "Zahlung"


def test_it_detects_a_tab_delimited_csv():
    data = b"Question\tAnswer\nDo you ship abroad?\tYes, to 30 countries, including Norway.\n"

    (doc,) = parse_upload(filename="faq.csv", data=data)

    assert doc.body == "Yes, to 30 countries, including Norway."


def test_it_names_the_header_when_a_required_column_is_missing():
    assert error_of("faq_missing_answer_column.csv") == (
        'Line 1: the header row needs "question" and "answer" columns (optional: category, url); '
        'found "Q", "Reply", "Category".'
    )


def test_it_names_the_row_of_an_empty_answer():
    assert error_of("faq_empty_answer.csv") == "Row 4: the answer column is empty"


def test_it_gives_the_line_too_when_multiline_cells_shift_rows():
    data = b'question,answer\nA?,"one\ntwo"\nB?,\n'

    assert error_of("faq.csv", data) == "Row 3 (line 4): the answer column is empty"


def test_it_names_both_rows_of_a_duplicate_question():
    assert error_of("faq_duplicate_question.csv") == (
        'Duplicate question "how long does shipping take?" (rows 2 and 4)'
    )


def test_it_rejects_a_csv_with_only_a_header():
    assert error_of("faq.csv", b"question,answer\n\n") == '"faq.csv" contains no documents.'


# --- Markdown, HTML, text, PDF ----------------------------------------------------------------
def test_it_reads_markdown_front_matter_and_keeps_headings_and_lists():
    (doc,) = parse("returns-and-refunds.md")

    assert doc.external_id == "returns-and-refunds.md"
    assert doc.title == "Returns and refunds"
    assert doc.url == "https://help.example.com/articles/returns-and-refunds"
    assert (doc.category, doc.product, doc.language, doc.kind) == (
        "Orders",
        "Web shop",
        "en",
        "article",
    )
    assert doc.body.startswith("# Returns and refunds\n\nWe want you to love")
    assert "Reviewed by the support team" not in doc.body
    assert "\n- Earrings and other pierced jewellery\n- Underwear" in doc.body
    assert "\n1. Sign in and open **Orders**.\n" in doc.body
    assert "\n### Refund timing\n\n" in doc.body


def test_it_titles_markdown_by_its_first_heading_or_else_its_filename():
    (with_heading,) = parse_upload(filename="a.md", data=b"Intro.\n\nSetup guide\n===\n\nText.")
    (without,) = parse_upload(filename="C:\\fakepath\\getting_started.md", data=b"Just text.")

    assert with_heading.title == "Setup guide"
    assert with_heading.body == "Intro.\n\n# Setup guide\n\nText."
    assert without.title == "Getting started"
    assert without.external_id == "getting_started.md"


def test_it_names_the_line_of_bad_front_matter():
    data = b"---\ntitle: Refunds\nurl: [unclosed\n---\n# Refunds\n"

    assert error_of("a.md", data).endswith("(invalid YAML)")
    assert error_of("a.md", data).startswith("Line 4")


def test_it_rejects_markdown_with_no_text():
    assert error_of("a.md", b"---\ntitle: Draft\n---\n<!-- to do -->\n") == (
        '"a.md" has no text to learn from.'
    )


def test_it_turns_a_help_page_into_text_without_navigation_or_scripts():
    (doc,) = parse("payment-methods.html")

    assert doc.title == "Payment methods"
    assert doc.url == "https://help.acme.example/en-us/articles/payment-methods"
    assert doc.language == "en"
    for noise in ("Search articles", "Related articles", "All rights reserved", "dataLayer",
                  "font-family", "Home", "Klarna"):  # fmt: skip
        assert noise not in doc.body
    assert doc.body.startswith(
        "# Payment methods\n\nWe accept most major cards, PayPal and bank transfer. Which ones you "
        "see at checkout depends on your country.\n\n## Cards\n\n"
        "We accept Visa, Mastercard and American Express.\n"
        "Prepaid cards work if they support online payments."
    )
    assert (
        "- 3-D Secure may ask you to confirm in your banking app:\n"
        "  - Approve within 5 minutes.\n  - Keep the checkout page open." in doc.body
    )
    assert "Country | Cards | PayPal | Bank transfer\nGermany" not in doc.body
    assert "United States | Yes | Yes | No\nGermany | Yes | Yes | Yes" in doc.body
    assert (
        "### Paying by bank transfer\n\n1. Choose Bank transfer at checkout.\n2. Send" in doc.body
    )


def test_it_titles_a_page_without_h1_by_its_title_tag():
    data = (
        b"<html><head><title>Shipping FAQ</title></head><body><p>We ship daily.</p></body></html>"
    )

    (doc,) = parse_upload(filename="shipping.htm", data=data)

    assert (doc.title, doc.body, doc.url, doc.language) == (
        "Shipping FAQ",
        "We ship daily.",
        "",
        "",
    )


def test_it_parses_plain_text_with_its_first_line_as_title():
    (doc,) = parse("delivery-times.txt")

    assert doc.title == "Delivery times"
    assert doc.external_id == "delivery-times.txt"
    assert doc.body.startswith("Delivery times\n\nOrders placed before 14:00")
    assert doc.body.endswith("as soon as the parcel leaves the warehouse.")


def test_it_titles_text_by_filename_when_the_first_line_is_long():
    (doc,) = parse_upload(filename="store-policy.txt", data=("word " * 40).encode())

    assert doc.title == "Store policy"


def test_it_extracts_pdf_text_per_page_and_rejoins_hyphenated_words():
    (doc,) = parse("router-guide.pdf")

    assert doc.title == "Acme Router X2 quick start guide"
    assert doc.external_id == "router-guide.pdf"
    assert "This usually takes about two minutes." in doc.body
    assert "printed on the same sticker.\n\nTroubleshooting\n" in doc.body


def test_it_rejects_a_pdf_without_a_text_layer():
    assert '"scanned.pdf" has no text layer (scanned?)' in error_of("scanned.pdf")


def test_it_rejects_a_password_protected_pdf():
    assert error_of("encrypted.pdf") == (
        '"encrypted.pdf" is password-protected; remove the password and try again.'
    )


def test_it_rejects_a_damaged_pdf():
    assert error_of("corrupt.pdf") == (
        '"corrupt.pdf" could not be read as a PDF (damaged or not a PDF).'
    )


# --- JSON Lines -------------------------------------------------------------------------------
def test_it_parses_jsonl_articles_with_their_metadata():
    docs = parse("articles.jsonl")

    assert [d.external_id for d in docs] == ["kb-101", "kb-102", "103"]
    assert docs[0].title == "Resetting your password"
    assert docs[0].body == (
        "Open Settings, choose Security, then Reset password.\n\n"
        "We e-mail you a link that is valid for one hour."
    )
    assert (docs[0].url, docs[0].category, docs[0].language) == (
        "https://help.example.com/kb-101",
        "Account",
        "en",
    )
    assert docs[1].product == "Mobile app"
    assert (docs[2].language, docs[2].url) == ("fr", "")


def test_it_names_the_line_of_bad_json_in_jsonl():
    assert error_of("articles_bad_json.jsonl") == 'Line 2, column 58: expected "," (invalid JSON)'


def test_it_names_the_missing_jsonl_field():
    assert error_of("articles_missing_body.jsonl") == 'Line 2: missing "body"'


def test_it_names_both_lines_of_a_duplicate_jsonl_id():
    assert error_of("articles_duplicate_id.jsonl") == 'Duplicate id "kb-101" (lines 1 and 4)'


def test_it_rejects_a_language_that_is_not_an_iso_code():
    data = b'{"id": "1", "title": "A", "body": "B", "language": "English"}\n'

    assert error_of("a.jsonl", data) == (
        'Line 1: "language": must be a two-letter ISO 639-1 code like "en", got "English"'
    )


def test_it_rejects_a_jsonl_field_of_the_wrong_type():
    data = b'{"id": "1", "title": ["A"], "body": "B"}\n'

    assert error_of("a.jsonl", data) == 'Line 1: "title": must be a string, got a list'


# --- Encoding and files that are not what they claim --------------------------------------------
def test_it_finds_the_line_of_a_byte_that_is_not_utf8():
    assert error_of("faq_latin1.csv").startswith(
        "The file is not UTF-8 text: invalid byte 0xE8 at line 3."
    )


@pytest.mark.parametrize("name", ["junk.json", "junk.csv", "junk.jsonl", "junk.md", "junk.yaml"])
def test_it_rejects_binary_junk_with_a_clean_message(name):
    data = (FIXTURES / "binary_junk.json").read_bytes()

    assert error_of(name, data).startswith("The file is not UTF-8 text: invalid byte 0x")


def test_it_rejects_nul_bytes_in_text():
    assert error_of("a.txt", b"Hello\nwor\x00ld\n") == (
        "Line 2: the file contains NUL bytes; it looks binary, not text."
    )


def test_it_reads_utf16_with_a_byte_order_mark():
    data = 'question,answer\nÇa marche ?,"Oui, très bien."\n'.encode("utf-16")

    (doc,) = parse_upload(filename="faq.csv", data=data)

    assert (doc.title, doc.body) == ("Ça marche ?", "Oui, très bien.")


@pytest.mark.parametrize("data", [b"", b"  \n\t\r\n", "\ufeff \n".encode()])
def test_it_rejects_an_empty_file(data):
    assert error_of("faq.csv", data) == "The file is empty."


def test_it_rejects_a_file_over_the_size_limit():
    data = b"a" * (MAX_UPLOAD_BYTES + 1)

    assert error_of("big.txt", data) == "The file is 20.0 MB; the limit is 20 MB."


def test_it_rejects_an_intents_file_with_no_intents():
    assert error_of("x.json", b'{"intents": []}') == '"x.json" contains no documents.'


# --- Format detection -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bot.yaml", "intents"),
        ("bot.YML", "intents"),
        ("faq.csv", "faq_csv"),
        ("guide.md", "markdown"),
        ("guide.markdown", "markdown"),
        ("page.html", "html"),
        ("page.htm", "html"),
        ("notes.txt", "text"),
        ("manual.pdf", "pdf"),
        ("kb.jsonl", "jsonl"),
        ("kb.ndjson", "jsonl"),
    ],
)
def test_it_detects_the_format_by_extension(name, expected):
    assert detect_format(name, b"anything") == expected
    assert expected in FORMATS


def test_it_detects_json_intents_by_the_intents_key():
    assert detect_format("bot.json", (FIXTURES / "intents.json").read_bytes()) == "intents"


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("intents.json", "intents"),
        ("intents.yaml", "intents"),
        ("articles.jsonl", "jsonl"),
        ("faq.csv", "faq_csv"),
        ("payment-methods.html", "html"),
        ("returns-and-refunds.md", "markdown"),
        ("router-guide.pdf", "pdf"),
        ("delivery-times.txt", "text"),
    ],
)
def test_it_sniffs_the_format_of_a_file_without_extension(fixture, expected):
    assert detect_format("upload", (FIXTURES / fixture).read_bytes()) == expected


def test_it_lists_the_accepted_formats_for_an_unknown_file_type():
    message = error_of("contract.docx", b"PK\x03\x04\x14\x00\x06\x00\x08\x00\xff\xfe")

    assert message.startswith('Can\'t read ".docx" files. Accepted: intents (.json, .yaml, .yml)')
    assert "PDF (.pdf)" in message and "(.jsonl, .ndjson)" in message


def test_an_explicit_format_overrides_the_extension():
    (doc,) = parse_upload(filename="export.dat", data=b"# Hello\n\nWorld.", format="markdown")

    assert (doc.title, doc.body) == ("Hello", "# Hello\n\nWorld.")


def test_it_rejects_an_unknown_format_name():
    with pytest.raises(ParseError, match='Unknown format "docx"'):
        parse_upload(filename="a.txt", data=b"text", format="docx")


def test_it_falls_back_to_og_url_and_ignores_a_malformed_lang():
    data = (
        b'<html lang="english"><head><meta property="og:url" content="https://x.example/a">'
        b"</head><body><h1>Billing</h1><div>Pay by card.</div></body></html>"
    )

    (doc,) = parse_upload(filename="billing.html", data=data)

    assert (doc.url, doc.language, doc.title) == ("https://x.example/a", "", "Billing")
    assert doc.body == "# Billing\n\nPay by card."
