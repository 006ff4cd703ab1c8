"""Addresses from knowledge content become links for agents and customers: only http(s) ones
are kept (issue 12, finding 5). A `javascript:` link in the console ran in our origin."""

import json

import pytest

from knowledge.parsers import parse_upload

UNSAFE = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(document.cookie)",
    " javascript:alert(1)",
    "\tjavascript:alert(1)",
    "\njavascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "\x01javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example.com/x",
    "/relative/page",
    "https:no-host",
    "mailto:help@example.com",
]


def _jsonl(url: str) -> bytes:
    return (
        json.dumps({"id": "a1", "title": "Refunds", "body": "Within 30 days.", "url": url}) + "\n"
    ).encode()


@pytest.mark.parametrize("url", UNSAFE)
def test_it_drops_a_jsonl_url_that_is_not_http_or_https(url):
    [doc] = parse_upload(filename="articles.jsonl", data=_jsonl(url))

    assert doc.url == ""


def test_it_keeps_an_https_jsonl_url_with_surrounding_space_trimmed():
    [doc] = parse_upload(
        filename="articles.jsonl", data=_jsonl("  HTTPS://help.example.com/refunds \n")
    )

    assert doc.url == "HTTPS://help.example.com/refunds"


@pytest.mark.parametrize(
    "head",
    [
        '<link rel="canonical" href="javascript:alert(document.domain)">',
        '<meta property="og:url" content="JAVASCRIPT:alert(1)">',
        '<link rel="canonical" href=" &#x09;javascript:alert(1)">',
        '<meta property="og:url" content="data:text/html;base64,PHNjcmlwdD4=">',
    ],
)
def test_it_drops_a_canonical_or_og_url_that_is_not_http_or_https(head):
    page = f"<html><head>{head}</head><body><h1>Refunds</h1><p>Within 30 days.</p></body></html>"

    [doc] = parse_upload(filename="refunds.html", data=page.encode())

    assert doc.url == ""


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("faq.csv", b"question,answer,url\nRefunds?,Within 30 days.,javascript:alert(1)\n"),
        ("refunds.md", b"---\nurl: ' javascript:alert(1)'\n---\n# Refunds\n\nWithin 30 days.\n"),
        (
            "intents.json",
            json.dumps(
                {"intents": [{"tag": "refunds", "patterns": ["refund?"], "url": "vbscript:x"}]}
            ).encode(),
        ),
    ],
)
def test_it_drops_unsafe_urls_from_faq_markdown_and_intent_files(name, data):
    [doc] = parse_upload(filename=name, data=data)

    assert doc.url == ""


@pytest.mark.django_db
def test_the_migration_blanks_stored_document_urls_that_are_not_http_or_https(acme_bot):
    from importlib import import_module

    from django.apps import apps

    from knowledge.models import Document, KnowledgeSource

    migration = import_module("knowledge.migrations.0009_document_http_urls_only")
    source = KnowledgeSource.objects.create(bot=acme_bot, name="articles.jsonl")
    stored = {
        "old-js": "javascript:fetch('/o/acme/bots/')",
        "old-spaced": " \tJaVaScRiPt:alert(1)",
        "old-data": "data:text/html,<script>alert(1)</script>",
        "kept": "https://help.example.com/refunds",
        "kept-upper": "HTTP://help.example.com/returns",
        "none": "",
    }
    for external_id, url in stored.items():
        Document.objects.create(
            bot=acme_bot, source=source, external_id=external_id, title=external_id, url=url
        )

    migration.blank_unsafe_urls(apps, None)

    assert dict(Document.objects.values_list("external_id", "url")) == {
        "old-js": "",
        "old-spaced": "",
        "old-data": "",
        "kept": "https://help.example.com/refunds",
        "kept-upper": "HTTP://help.example.com/returns",
        "none": "",
    }
