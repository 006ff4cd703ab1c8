"""Addresses stored before knowledge kept only http(s) ones (issue 12, finding 5): the console
renders them as text, never as a `javascript:` link that runs in our origin when clicked."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from conversations.models import Message
from conversations.payloads import message_payload
from conversations.tests.factories import MessageFactory
from escalation.models import EscalationLog
from escalation.services import escalation_open
from knowledge.models import KnowledgeSource

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "pane"}
UNSAFE = [
    "javascript:fetch('/o/acme/bots/').then(r => r.text()).then(alert)",
    "JaVaScRiPt:alert(1)",
    " \tjavascript:alert(1)",
    "java\nscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
]


def _hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


def _pane(client, agent, conversation) -> str:
    client.force_login(agent)
    url = reverse("console_conversation", args=["acme", conversation.pk])
    return client.get(url, **HTMX).content.decode()


def test_the_handoff_package_shows_an_unsafe_address_as_a_title_not_a_link(
    client, agent, carlas_chat
):
    MessageFactory(conversation=carlas_chat, text="Refund?")
    escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked")
    retrieved = [{"title": f"Old {n}", "url": url} for n, url in enumerate(UNSAFE)]
    retrieved.append({"title": "Shipping", "url": "https://acme.example/s"})
    EscalationLog.objects.filter(conversation=carlas_chat).update(package={"retrieved": retrieved})

    html = _pane(client, agent, carlas_chat)

    assert 'href="https://acme.example/s"' in html
    for n in range(len(UNSAFE)):
        assert f"Old {n}" in html
    for href in _hrefs(html):
        assert "script" not in href.lower() and not href.lower().startswith("data:"), href


def test_an_old_citation_in_the_bots_last_answer_is_not_a_link_in_the_console(
    client, agent, carlas_chat
):
    question = MessageFactory(conversation=carlas_chat, text="How long is the warranty?")
    Message.objects.create(
        conversation=carlas_chat,
        sender="ai",
        reply_to=question,
        text="Two years.",
        citations=[{"chunk_id": 7, "title": "Warranty", "url": " javascript:alert(1)"}],
    )

    html = _pane(client, agent, carlas_chat)

    assert "Warranty" in html
    assert not [h for h in _hrefs(html) if "script" in h.lower()]


@pytest.mark.parametrize("url", UNSAFE)
def test_a_message_sent_to_the_widget_or_the_api_carries_no_unsafe_citation_url(carlas_chat, url):
    message = Message.objects.create(
        conversation=carlas_chat,
        sender="ai",
        text="Two years.",
        citations=[
            {"n": 1, "title": "Old", "url": url},
            {"n": 2, "title": "Warranty", "url": "https://acme.example/w"},
        ],
    )

    citations = message_payload(message)["citations"]

    assert citations == [
        {"n": 1, "title": "Old", "url": ""},
        {"n": 2, "title": "Warranty", "url": "https://acme.example/w"},
    ]
    message.refresh_from_db()
    assert message.citations[0]["url"] == url  # history is kept as it was


def test_the_knowledge_page_links_no_source_address_that_is_not_http(client, owner, acme_bot):
    KnowledgeSource.objects.create(
        bot=acme_bot, name="Old page", kind="url", url="javascript:alert(1)"
    )
    client.force_login(owner)

    html = client.get(reverse("bot_knowledge", args=["acme", acme_bot.slug])).content.decode()

    assert "Old page" in html
    assert not [h for h in _hrefs(html) if "script" in h.lower()]
