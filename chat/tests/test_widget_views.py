"""The widget's public endpoints and the member pages around it: Integrations, Playground and
the answer trace. Anonymous → sign in, members → the page (the secret key for managers only),
another organization → 404."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from chat.views import snippets
from conversations.models import Conversation, Customer, Message

pytestmark = pytest.mark.django_db

SHOP = "https://shop.example.com"


@pytest.fixture
def shop_bot(acme_bot):
    acme_bot.allowed_origins = [SHOP]
    acme_bot.greeting = "Hello from Acme"
    acme_bot.colour = "#ff5500"
    acme_bot.widget_position = "left"
    acme_bot.save()
    return acme_bot


def _answer(bot, trace=None, text="Standard shipping takes 3 to 5 business days."):
    customer = Customer.objects.create(bot=bot, visitor_id="visitor-12345678")
    conversation = Conversation.objects.create(bot=bot, customer=customer)
    return Message.objects.create(
        conversation=conversation,
        sender=Message.Sender.AI,
        text=text,
        outcome=Message.Outcome.ANSWERED,
        confidence=0.82,
        trace=trace or {},
    )


# --- widget.js -----------------------------------------------------------------------------------
def test_it_serves_the_widget_script_to_any_site(client):
    response = client.get("/widget.js", HTTP_ORIGIN="https://anywhere.example")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "max-age=" in response["Cache-Control"]
    assert b'customElements.define("handoff-chat"' in response.content


def test_it_answers_an_unchanged_widget_script_with_304(client):
    etag = client.get("/widget.js")["ETag"]
    response = client.get("/widget.js", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304


def test_the_widget_script_stays_small(client):
    # 38 KB since issue 17 (actions: the confirmation card, the progress line while one runs);
    # 35 KB since issue 14 (outcomes: "Did that answer your question?", the rating's comment,
    # awaiting_customer); 33 KB since issue 12 (styles a strict CSP allows, citation links
    # checked by parsing); 32 KB since issue 11 (the end of a resolved chat: stars,
    # announcement, a new start; no conversation before the first message); 28 KB since issue 5;
    # 25 KB before.
    assert len(client.get("/widget.js").content) < 38 * 1024


# --- config.json ---------------------------------------------------------------------------------
def test_it_gives_an_allowed_site_the_bots_look(client, shop_bot):
    url = reverse("widget_config", args=[shop_bot.public_key])
    response = client.get(url, HTTP_ORIGIN=SHOP)
    assert response.status_code == 200
    assert response.json() == {
        "name": "Acme Support",
        "greeting": "Hello from Acme",
        "colour": "#ff5500",
        "position": "left",
    }
    assert response["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in response["Vary"]


def test_it_refuses_a_site_that_is_not_allowed_with_a_reason(client, shop_bot):
    url = reverse("widget_config", args=[shop_bot.public_key])
    response = client.get(url, HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 403
    assert "https://evil.example may not embed this chat" in response.json()["error"]
    assert "name" not in response.json()
    # Readable by the refused page, so the widget can log why.
    assert response["Access-Control-Allow-Origin"] == "https://evil.example"


def test_it_allows_this_servers_own_pages(client, shop_bot, settings):
    settings.SITE_URL = "https://handoff.example.org"
    url = reverse("widget_config", args=[shop_bot.public_key])
    assert client.get(url, HTTP_ORIGIN="https://handoff.example.org").status_code == 200


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("http://127.0.0.1:8000", 200),  # this server's exact origin
        ("http://127.0.0.1:4000", 403),  # a shop on another port of the same machine
        ("http://127.0.0.1", 403),
        ("https://127.0.0.1:8000", 403),
    ],
)
def test_without_allowed_origins_only_this_servers_exact_origin_gets_the_config(
    client, acme_bot, settings, origin, status
):
    settings.SITE_URL = "http://127.0.0.1:8000"
    url = reverse("widget_config", args=[acme_bot.public_key])
    response = client.get(url, HTTP_ORIGIN=origin, HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == status


def test_the_origin_a_request_was_addressed_to_is_this_servers_own(client, acme_bot, settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.ALLOWED_HOSTS = ["support.acme.example"]
    url = reverse("widget_config", args=[acme_bot.public_key])
    own = client.get(
        url,
        HTTP_ORIGIN="https://support.acme.example",
        HTTP_HOST="support.acme.example",
        HTTP_X_FORWARDED_PROTO="https",
    )
    assert own.status_code == 200
    plain = client.get(
        url, HTTP_ORIGIN="https://support.acme.example", HTTP_HOST="support.acme.example"
    )
    assert plain.status_code == 403


def test_it_allows_every_site_with_a_star(client, shop_bot):
    shop_bot.allowed_origins = ["*"]
    shop_bot.save()
    url = reverse("widget_config", args=[shop_bot.public_key])
    assert client.get(url, HTTP_ORIGIN="https://anyone.example").status_code == 200


def test_it_answers_an_unknown_key_with_a_json_404(client, shop_bot):
    response = client.get(reverse("widget_config", args=["pk_nope"]), HTTP_ORIGIN=SHOP)
    assert response.status_code == 404
    assert response.json() == {"error": "There is no bot with this key."}


# --- Full page and iframe ------------------------------------------------------------------------
def _frame_ancestors(response) -> str:
    # The page's whole policy is config/tests/test_csp.py's; here, who may frame it.
    policy = response["Content-Security-Policy"].split("; ")
    return next(part for part in policy if part.startswith("frame-ancestors "))


def test_it_serves_the_full_page_chat_without_allowing_framing(client, shop_bot):
    response = client.get(reverse("chat_page", args=[shop_bot.public_key]))
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    body = response.content.decode()
    assert f'<handoff-chat bot="{shop_bot.public_key}" mode="page">' in body
    assert 'src="/widget.js"' in body


def test_it_lets_only_the_allowed_origins_frame_the_chat(client, shop_bot, settings):
    settings.SITE_URL = "https://support.acme.example"
    shop_bot.allowed_origins = [SHOP, "http://localhost:3000"]
    shop_bot.save()
    response = client.get(reverse("widget_frame", args=[shop_bot.public_key]))
    assert response.status_code == 200
    assert "X-Frame-Options" not in response
    assert _frame_ancestors(response) == (
        f"frame-ancestors https://support.acme.example http://testserver {SHOP} "
        "http://localhost:3000"
    )


def test_a_bot_without_allowed_origins_is_framed_by_this_server_only(client, acme_bot, settings):
    # This server's own origins, exactly: SITE_URL's and the one the page was asked from.
    settings.SITE_URL = "http://127.0.0.1:8000"
    response = client.get(
        reverse("widget_frame", args=[acme_bot.public_key]), HTTP_HOST="localhost:8000"
    )
    assert _frame_ancestors(response) == (
        "frame-ancestors http://127.0.0.1:8000 http://localhost:8000"
    )


def test_a_malformed_origin_never_reaches_the_frame_header(client, acme_bot, settings):
    # Saved around the form's validation, e.g. by a script: dropped, not injected.
    settings.SITE_URL = "http://127.0.0.1:8000"
    acme_bot.allowed_origins = [SHOP, "https://a.example; script-src *"]
    acme_bot.save()
    response = client.get(
        reverse("widget_frame", args=[acme_bot.public_key]), HTTP_HOST="127.0.0.1:8000"
    )
    assert _frame_ancestors(response) == f"frame-ancestors http://127.0.0.1:8000 {SHOP}"
    assert "script-src *" not in response["Content-Security-Policy"]


def test_the_public_pages_404_for_an_unknown_key(client, db):
    assert client.get(reverse("chat_page", args=["pk_nope"])).status_code == 404
    assert client.get(reverse("widget_frame", args=["pk_nope"])).status_code == 404


# --- Integrations --------------------------------------------------------------------------------
def _integrations(org, bot):
    return reverse("bot_integrations", args=[org.slug, bot.slug])


def test_integrations_sends_anonymous_visitors_to_sign_in(client, acme, acme_bot):
    response = client.get(_integrations(acme, acme_bot))
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


@pytest.mark.parametrize("persona", ["owner", "admin_member"])
def test_integrations_shows_managers_the_snippets_and_a_masked_secret(
    client, request, acme, shop_bot, settings, persona
):
    settings.SITE_URL = "https://support.acme.example"
    client.force_login(request.getfixturevalue(persona))
    body = client.get(_integrations(acme, shop_bot)).content.decode()
    key = shop_bot.public_key
    assert (
        f"&lt;script src=&quot;https://support.acme.example/widget.js&quot; "
        f"data-bot=&quot;{key}&quot; async&gt;&lt;/script&gt;"
    ) in body
    assert f"https://support.acme.example/widget/{key}/frame" in body
    assert f"https://support.acme.example/chat/{key}/" in body
    assert SHOP in body
    assert "hmac.new(" in body and "createHmac(" in body and "user_hash" in body
    assert "Reveal secret key" in body
    assert shop_bot.secret_key not in body


def test_integrations_says_exactly_which_pages_may_chat_without_allowed_origins(
    client, agent, acme, acme_bot, settings
):
    settings.SITE_URL = "http://127.0.0.1:8000"
    client.force_login(agent)
    body = client.get(_integrations(acme, acme_bot), HTTP_HOST="127.0.0.1:8000").content.decode()
    origins = body[body.index('id="origins"') :]
    # What config.json, the socket and frame-ancestors accept, in the page's words.
    assert "This server's own pages (<code>http://127.0.0.1:8000</code>) always may" in origins
    assert "another port or scheme of the same host is another site" in origins
    assert "only the full-page link and the Playground work" in origins


def test_integrations_shows_agents_the_snippets_but_never_the_secret(client, agent, acme, acme_bot):
    client.force_login(agent)
    response = client.get(_integrations(acme, acme_bot))
    body = response.content.decode()
    assert response.status_code == 200
    assert acme_bot.public_key in body
    assert acme_bot.secret_key not in body
    assert "Reveal secret key" not in body


def test_integrations_is_hidden_from_another_organization(client, outsider, acme, acme_bot):
    client.force_login(outsider)
    assert client.get(_integrations(acme, acme_bot)).status_code == 404


def test_a_manager_reveals_the_secret_key(client, admin_member, acme, acme_bot):
    client.force_login(admin_member)
    url = reverse("bot_secret_reveal", args=[acme.slug, acme_bot.slug])
    response = client.post(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert acme_bot.secret_key in response.content.decode()
    assert "no-store" in response["Cache-Control"]


def test_an_agent_cannot_reveal_the_secret_key(client, agent, acme, acme_bot):
    client.force_login(agent)
    response = client.post(reverse("bot_secret_reveal", args=[acme.slug, acme_bot.slug]))
    assert response.status_code == 403
    assert acme_bot.secret_key not in response.content.decode()


def test_an_outsider_cannot_reveal_the_secret_key(client, outsider, acme, acme_bot):
    client.force_login(outsider)
    response = client.post(reverse("bot_secret_reveal", args=[acme.slug, acme_bot.slug]))
    assert response.status_code == 404


def test_the_secret_is_not_revealed_by_a_get(client, owner, acme, acme_bot):
    client.force_login(owner)
    response = client.get(reverse("bot_secret_reveal", args=[acme.slug, acme_bot.slug]))
    assert response.status_code == 405


# --- Playground ----------------------------------------------------------------------------------
def _playground(org, bot):
    return reverse("bot_playground", args=[org.slug, bot.slug])


@pytest.mark.parametrize("persona", ["owner", "admin_member", "agent"])
def test_playground_lets_members_chat_with_the_bot(client, request, acme, acme_bot, persona):
    client.force_login(request.getfixturevalue(persona))
    response = client.get(_playground(acme, acme_bot))
    assert response.status_code == 200
    body = response.content.decode()
    assert f'<handoff-chat bot="{acme_bot.public_key}" mode="page" channel="playground">' in body
    assert acme_bot.secret_key not in body


def test_playground_sends_anonymous_visitors_to_sign_in(client, acme, acme_bot):
    response = client.get(_playground(acme, acme_bot))
    assert response.status_code == 302


def test_playground_is_hidden_from_another_organization(client, outsider, acme, acme_bot):
    client.force_login(outsider)
    assert client.get(_playground(acme, acme_bot)).status_code == 404


def test_the_bot_page_links_to_integrations_and_playground(client, agent, acme, acme_bot):
    client.force_login(agent)
    body = client.get(reverse("bot_detail", args=[acme.slug, acme_bot.slug])).content.decode()
    assert _integrations(acme, acme_bot) in body
    assert _playground(acme, acme_bot) in body


# --- The trace of an answer ----------------------------------------------------------------------
TRACE = {
    "category": "question",
    "classify_method": "embeddings",
    "query": "and how long does it take?",
    "rewritten_query": "how long does standard shipping take",
    "retrieved": [
        {"chunk_id": 7, "document_id": 3, "kind": "faq", "score": 0.8123, "dense": 0.7},
        {"chunk_id": 9, "document_id": 4, "kind": "faq", "score": 0.51, "dense": 0.4},
    ],
    "gate": {"decision": "strong", "score": 0.8123, "weak": 0.3, "strong": 0.6},
    "answer_method": "extractive",
    "outcome": "answered",
    "model": None,
    "tokens": {"prompt": 310, "completion": 42},
    "timings_ms": {"retrieve": 12.5, "answer": 80, "total": 120.25},
}


def _trace(org, bot, message):
    return reverse("bot_playground_trace", args=[org.slug, bot.slug, message.pk])


def test_the_trace_shows_each_step_as_a_table(client, agent, acme, acme_bot):
    message = _answer(acme_bot, trace=TRACE)
    client.force_login(agent)
    response = client.get(_trace(acme, acme_bot, message), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert f'id="trace-{message.pk}"' in body
    assert "<html" not in body  # the partial only
    for text in [
        "Category",
        "question",
        "Rewritten query",
        "how long does standard shipping take",
        "0.8123",
        "Decision",
        "strong",
        "extractive",
        "310",
        "Timings (ms)",
        "12.5",
    ]:
        assert text in body, text
    # Pipeline order: what it understood before what it found, before what it cost.
    assert body.index("Category") < body.index("Retrieved") < body.index("Timings (ms)")
    # Chunks no longer in the knowledge (re-synced since) are said to be gone.
    assert "(no longer in the knowledge)" in body


def test_the_trace_names_the_retrieved_passages(client, agent, acme, acme_bot):
    from knowledge.models import Chunk, Document, KnowledgeSource

    source = KnowledgeSource.objects.create(bot=acme_bot, name="faq.csv")
    document = Document.objects.create(
        bot=acme_bot, source=source, external_id="1", title="How long does shipping take?"
    )
    chunk = Chunk.objects.create(
        document=document,
        bot=acme_bot,
        position=0,
        text="Parcels leave the Leeds warehouse every weekday.",
        embed_text="shipping",
        embedding_model="local:test",
        embedding=[0.0] * 384,
    )
    message = _answer(acme_bot, trace={"retrieved": [{"chunk_id": chunk.pk, "score": 0.9}]})
    client.force_login(agent)
    body = client.get(_trace(acme, acme_bot, message)).content.decode()
    assert "How long does shipping take?" in body
    assert "Parcels leave the Leeds warehouse every weekday." in body


def test_the_trace_is_json_when_asked(client, owner, acme, acme_bot):
    message = _answer(acme_bot, trace=TRACE)
    client.force_login(owner)
    response = client.get(_trace(acme, acme_bot, message), HTTP_ACCEPT="application/json")
    assert response.json() == {"message_id": message.pk, "trace": TRACE}


def test_a_message_without_a_trace_says_so(client, owner, acme, acme_bot):
    message = _answer(acme_bot)
    client.force_login(owner)
    assert "No trace was recorded" in client.get(_trace(acme, acme_bot, message)).content.decode()


def test_the_trace_is_hidden_from_another_organization(
    client, outsider, acme, globex, acme_bot, globex_bot
):
    message = _answer(acme_bot, trace=TRACE)
    client.force_login(outsider)
    assert client.get(_trace(acme, acme_bot, message)).status_code == 404
    # Nor through a bot of their own organization.
    assert client.get(_trace(globex, globex_bot, message)).status_code == 404


def test_the_trace_is_found_only_under_its_own_bot(client, owner, acme, acme_bot):
    from bots.tests.factories import BotFactory

    other = BotFactory(organization=acme, slug="returns")
    message = _answer(acme_bot, trace=TRACE)
    client.force_login(owner)
    assert client.get(_trace(acme, other, message)).status_code == 404


def test_the_trace_sends_anonymous_visitors_to_sign_in(client, acme, acme_bot):
    message = _answer(acme_bot, trace=TRACE)
    assert client.get(_trace(acme, acme_bot, message)).status_code == 302


def test_a_customer_message_has_no_trace_page(client, owner, acme, acme_bot):
    # Only the bot's answers have traces; a customer's message is not one of them.
    message = _answer(acme_bot, trace=TRACE)
    customer_message = Message.objects.create(
        conversation=message.conversation, sender=Message.Sender.USER, text="hi"
    )
    client.force_login(owner)
    assert client.get(_trace(acme, acme_bot, customer_message)).status_code == 404


def test_the_iframe_snippet_escapes_the_bots_name(client, owner, acme, acme_bot):
    acme_bot.name = 'Q"><script>alert(document.cookie)</script>'
    acme_bot.save(update_fields=["name"])
    snippet = snippets(bot=acme_bot, base="https://support.acme.example")["iframe"]

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags = []

        def handle_starttag(self, tag, attrs):
            self.tags.append((tag, dict(attrs)))

    tags = Tags()
    tags.feed(snippet)
    # Pasted into the owner's site it is one iframe whose title is the name, and no script.
    assert [tag for tag, _ in tags.tags] == ["iframe"]
    assert tags.tags[0][1]["title"] == f"Chat with {acme_bot.name}"
    # Shown on the Integrations page as text, escaped once more.
    client.force_login(owner)
    body = client.get(_integrations(acme, acme_bot)).content.decode()
    assert "<script>alert(document.cookie)" not in body
