"""What a quoted answer cites: the section, and a link a customer can open at that section."""

import pytest

from knowledge import services
from knowledge.models import Document
from knowledge.tests.help_fixtures import GIFT_CARDS

pytestmark = pytest.mark.django_db


def test_an_uploaded_document_is_cited_at_its_help_pages_section(shop_bot, ask, settings):
    settings.SITE_URL = "https://support.acme.example"
    services.source_upload(bot=shop_bot, filename="gift-cards.md", data=GIFT_CARDS, sync_now=True)
    guide = Document.objects.get(bot=shop_bot, title="Gift cards")

    _, final = ask(shop_bot, "Do Acme gift cards expire?")

    assert final["outcome"] == "answered", final["trace"]["gate"]
    assert "never expire" in final["text"]
    [source] = final["citations"]
    assert source["document_id"] == guide.pk
    assert source["url"] == "", "the upload has no address of its own"
    assert source["heading"] == "Gift card expiry"
    assert source["link"] == (
        f"https://support.acme.example/help/acme/acme-support/{guide.pk}-gift-cards/"
        "#gift-card-expiry"
    )
