"""A citation's `link` (where the widget's source opens) leaves for a browser only as http(s)."""

import pytest

from conversations.models import Message
from conversations.payloads import message_payload

pytestmark = pytest.mark.django_db


def test_a_citation_link_that_is_not_http_leaves_as_no_link(carlas_chat):
    help_page = "https://support.acme.example/help/acme/acme-support/7-gift-cards/#expiry"
    message = Message.objects.create(
        conversation=carlas_chat,
        sender="ai",
        text="They never expire.",
        citations=[
            {"n": 1, "title": "Old", "url": "", "heading": "x", "link": " javascript:alert(1)"},
            {"n": 2, "title": "Gift cards", "url": "", "heading": "Expiry", "link": help_page},
        ],
    )

    citations = message_payload(message)["citations"]

    assert [c["link"] for c in citations] == ["", help_page]
    assert citations[1]["heading"] == "Expiry"
