"""The public help pages: one per article or FAQ, anchors per section, nothing else public, each
bot's pages under its own path only; and the citation links that point into them."""

import json
import re

import pytest
from django.urls import reverse

from knowledge import selectors, services
from knowledge.help_pages import page_sections, section_anchor, text_fragment_url
from knowledge.models import Chunk, Document
from knowledge.parsers import ParseError
from knowledge.tests.conftest import FAQ_CSV

pytestmark = pytest.mark.django_db

GUIDE = b"""# Shop guide

Everything about orders at Acme.

## Returns and refunds

You can return any unused item within 30 days. Refunds reach your card within 5 days of the
return arriving at our warehouse, and we e-mail you as soon as the refund has been issued.

## Shipping

### Fees

Standard shipping costs $4.95 <script>alert("x")</script> and is free over $50.
See [our rates](javascript:alert(1)) for details. Express shipping costs $14.95 and arrives
the next business day when you order before 2 pm.

## Returns and refunds

A second section with the same heading: exchanges are free. Choose Exchange instead of Return
in your order, pick the new size or colour, and we ship it as soon as the first one is back.
"""


def _upload(bot, filename, data, **kwargs):
    return services.source_upload(bot=bot, filename=filename, data=data, sync_now=True, **kwargs)


@pytest.fixture
def guide(acme_bot):
    _upload(acme_bot, "guide.md", GUIDE)
    return Document.objects.get(bot=acme_bot, title="Shop guide")


def _page(bot, document):
    return reverse(
        "help_document", args=[bot.organization.slug, bot.slug, document.pk, "shop-guide"]
    )


def test_anyone_reads_an_uploaded_document_section_by_section(client, acme_bot, guide):
    response = client.get(_page(acme_bot, guide))  # no one signed in: a public help page

    assert response.status_code == 200
    html = response.content.decode()
    ids = re.findall(r'<h([2-6]) id="([^"]+)">([^<]+)</h\1>', html)
    assert [(level, anchor, text) for level, anchor, text in ids] == [
        ("2", "returns-and-refunds", "Returns and refunds"),
        ("2", "shipping", "Shipping"),
        ("3", "fees", "Fees"),
        ("2", "returns-and-refunds-2", "Returns and refunds"),  # the same heading again
    ]
    assert "<h1>Shop guide</h1>" in html
    assert "Refunds reach your card within 5 days of the return arriving" in html


def test_uploaded_text_is_shown_as_text_never_as_markup_or_links(client, acme_bot, guide):
    html = client.get(_page(acme_bot, guide)).content.decode()

    assert "<script>alert" not in html and "&lt;script&gt;alert(&quot;x&quot;)" in html
    assert "javascript:" not in html.split("<main>")[1].replace(
        "[our rates](javascript:alert(1))", ""
    ), "the link's text stays, as text"
    assert 'href="javascript' not in html
    # No script at all on the page: nothing for the policy to allow.
    assert "<script" not in html.replace("&lt;script", "")


def test_the_index_lists_articles_and_faqs_but_not_intents(client, acme_bot, guide):
    _upload(acme_bot, "faq.csv", FAQ_CSV)
    intents = {"intents": [{"tag": "opening_hours", "patterns": ["when are you open"],
                            "responses": ["9 to 5."]}]}  # fmt: skip
    _upload(acme_bot, "intents.json", json.dumps(intents).encode())

    response = client.get(reverse("help_index", args=["acme", "acme-support"]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Shop guide" in html and "How long does shipping take?" in html
    assert "opening_hours" not in html and "when are you open" not in html
    faq = Document.objects.get(bot=acme_bot, title="How long does shipping take?")
    href = re.search(rf'href="([^"]*/{faq.pk}-[^"]*)"', html).group(1)
    assert href.endswith(f"/help/acme/acme-support/{faq.pk}-how-long-does-shipping-take/")
    assert "Standard shipping takes 3 to 5 business days." in client.get(href).content.decode()


def test_an_intent_is_not_a_help_page(client, acme_bot):
    intents = {"intents": [{"tag": "opening_hours", "patterns": ["when are you open"],
                            "responses": ["9 to 5."]}]}  # fmt: skip
    _upload(acme_bot, "intents.json", json.dumps(intents).encode())
    intent = Document.objects.get(bot=acme_bot, kind="intent")

    url = reverse("help_document", args=["acme", "acme-support", intent.pk, "opening-hours"])
    assert client.get(url).status_code == 404


def test_another_organizations_document_under_acmes_path_is_a_404(
    client, acme_bot, globex_bot, guide
):
    _upload(globex_bot, "faq.csv", FAQ_CSV)
    theirs = Document.objects.filter(bot=globex_bot).first()

    for org, bot in (("acme", "acme-support"), ("globex", "acme-support"), ("acme", "nope")):
        url = reverse("help_document", args=[org, bot, theirs.pk, "x"])
        assert client.get(url).status_code == 404, (org, bot)
    # Acme's document under Globex's path neither.
    ours = reverse("help_document", args=["globex", "globex-helper", guide.pk, "shop-guide"])
    assert client.get(ours).status_code == 404
    assert client.get(reverse("help_index", args=["acme", "globex-helper"])).status_code == 404
    # Globex's own path serves Globex's.
    ok = client.get(reverse("help_document", args=["globex", "globex-helper", theirs.pk, "x"]))
    assert ok.status_code == 301  # to its canonical address, then 200
    assert client.get(ok["Location"]).status_code == 200


def test_a_deleted_bot_has_no_help_pages(client, acme_bot, guide):
    url = _page(acme_bot, guide)
    acme_bot.delete()
    assert client.get(url).status_code == 404


def test_a_bot_that_keeps_its_help_pages_private_shows_none_and_cites_without_a_link(
    client, acme_bot, guide, settings
):
    settings.SITE_URL = "https://support.acme.example"
    chunk = Chunk.objects.filter(document=guide, text__contains="exchanges are free").get()
    public_link, section = selectors.citation_target(
        bot=acme_bot, document_id=guide.pk, heading=chunk.heading, text=chunk.text, url=""
    )
    assert public_link.endswith("#returns-and-refunds-2") and section == "Returns and refunds"
    acme_bot.help_pages = False
    acme_bot.save(update_fields=["help_pages"])

    assert client.get(_page(acme_bot, guide)).status_code == 404
    assert client.get(reverse("help_index", args=["acme", "acme-support"])).status_code == 404
    link, heading = selectors.citation_target(
        bot=acme_bot, document_id=guide.pk, heading=chunk.heading, text=chunk.text, url=""
    )
    assert (link, heading) == ("", section), "no link, the section still named"
    # A document with its own address is still cited there: that page is the business's own.
    own, _ = selectors.citation_target(
        bot=acme_bot, document_id=guide.pk, heading="", text="", url="https://acme.example/x"
    )
    assert own.startswith("https://acme.example/x")

    acme_bot.help_pages = True
    acme_bot.save(update_fields=["help_pages"])
    assert client.get(_page(acme_bot, guide)).status_code == 200


def test_a_renamed_document_keeps_its_links(client, acme_bot, guide):
    response = client.get(
        reverse("help_document", args=["acme", "acme-support", guide.pk, "old-title"])
    )
    assert response.status_code == 301
    assert response["Location"] == _page(acme_bot, guide)


def test_a_refused_new_version_leaves_the_serving_one_public(client, acme_bot, guide):
    source = guide.source
    with pytest.raises(ParseError):
        _upload(acme_bot, "guide.md", b"\x00\x01 not markdown \xff" * 10, source=source)

    html = client.get(_page(acme_bot, guide)).content.decode()
    assert "Refunds reach your card within 5 days of the return arriving" in html


def test_every_chunk_cites_an_anchor_its_help_page_has(client, acme_bot, guide, settings):
    settings.SITE_URL = "https://support.acme.example"
    page = client.get(_page(acme_bot, guide)).content.decode()
    chunks = list(Chunk.objects.filter(document=guide).order_by("position"))
    anchors = []

    for chunk in chunks:
        link, _heading = selectors.citation_target(
            bot=acme_bot, document_id=guide.pk, heading=chunk.heading, text=chunk.text, url=""
        )
        assert link.startswith(f"https://support.acme.example{_page(acme_bot, guide)}")
        if "#" in link:  # not when the chunk opens with the text before the first heading
            anchor = link.split("#", 1)[1]
            assert f'id="{anchor}"' in page, (chunk.heading, anchor)
            anchors.append(anchor)
    assert anchors
    # The second "Returns and refunds" is told apart by its text.
    [second] = [c for c in chunks if "exchanges are free" in c.text]
    assert second.heading == "Returns and refunds"
    assert section_anchor(guide.body, guide.title, second.heading, second.text) == (
        "returns-and-refunds-2"
    )


def test_a_document_with_its_own_address_is_cited_there_at_the_quotes_heading(acme_bot):
    page = (
        b"---\nurl: https://acme.example/help/shipping\n---\n# Shipping\n\n"
        b"We ship worldwide from our warehouse in Ohio.\n\n## Fees & taxes\n\n"
        b"Standard shipping costs $4.95 and is free over $50.\n"
    )
    _upload(acme_bot, "shipping.md", page)
    doc = Document.objects.get(bot=acme_bot, title="Shipping")

    # A small section is merged into its neighbour's chunk: the quote decides the heading.
    link, heading = selectors.citation_target(
        bot=acme_bot,
        document_id=doc.pk,
        heading="",
        text="Standard shipping costs $4.95 and is free over $50.",
        url=doc.url,
    )
    assert heading == "Fees & taxes"
    assert link == "https://acme.example/help/shipping#:~:text=Fees%20%26%20taxes"
    intro = selectors.citation_target(
        bot=acme_bot,
        document_id=doc.pk,
        heading="Fees & taxes",
        text="We ship worldwide from our warehouse in Ohio.",
        url=doc.url,
    )
    assert intro == ("https://acme.example/help/shipping", ""), "the intro: no heading to go to"


def test_an_address_that_is_not_http_is_never_a_link(acme_bot, guide):
    link, _heading = selectors.citation_target(
        bot=acme_bot, document_id=guide.pk, heading="", text="", url="javascript:alert(1)"
    )
    assert link.startswith("http") and "/help/acme/acme-support/" in link


def test_text_fragments_escape_their_own_syntax_and_keep_a_given_fragment():
    assert text_fragment_url("https://a.example/p", "Pre-orders, and more") == (
        "https://a.example/p#:~:text=Pre%2Dorders%2C%20and%20more"
    )
    assert text_fragment_url("https://a.example/p#top", "Fees") == "https://a.example/p#top"
    assert text_fragment_url("https://a.example/p", "") == "https://a.example/p"
    assert text_fragment_url(" javascript:alert(1)", "Fees") == ""


def test_lists_and_code_keep_their_lines_and_paragraphs_are_joined():
    body = (
        "## A\n\nOne line\nwrapped.\n\n- first\n- second\n  more\n\n1. one\n2. two\n\n"
        "```\nx = 1\ny = 2\n```"
    )
    [section] = page_sections(body, "T")
    assert [(b.kind, b.lines) for b in section.blocks] == [
        ("p", ["One line wrapped."]),
        ("ul", ["first", "second more"]),
        ("ol", ["one", "two"]),
        ("pre", ["x = 1", "y = 2"]),
    ]


def test_sections_open_the_parent_heading_once():
    body = "# T\n\n## A\n### B\nb text\n\n### C\nc text\n\n## B\nother b"
    sections = page_sections(body, "T")
    assert [[h.anchor for h in s.headings] for s in sections] == [["a", "b"], ["c"], ["b-2"]]
    assert [s.path for s in sections] == ["A > B", "A > C", "B"]
