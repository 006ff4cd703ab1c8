"""Adding web pages and sitemaps on the knowledge page and in Django admin: managers only,
tenant-isolated, bad addresses refused on the page."""

import pytest
from django.urls import reverse

from knowledge.models import Document, KnowledgeSource
from knowledge.tests.conftest import html_page

pytestmark = pytest.mark.django_db

SHIPPING = html_page("Shipping times", "Standard shipping takes 3 to 5 business days.")


def _url(name, bot, *args):
    return reverse(name, args=[bot.organization.slug, bot.slug, *args])


@pytest.fixture
def post(client, q_sync, django_capture_on_commit_callbacks):
    """POST as the signed-in user; the sync it enqueues runs before this returns."""

    def send(url, data=None):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, data or {})

    return send


def _form(url, kind="url", sync_interval="daily"):
    return {"url": url, "kind": kind, "sync_interval": sync_interval}


@pytest.mark.parametrize("persona", ["owner", "admin_member"])
def test_a_manager_adds_a_web_page_and_it_syncs(client, request, acme_bot, site, post, persona):
    client.force_login(request.getfixturevalue(persona))
    site.put("/shipping", SHIPPING)
    response = post(_url("knowledge_add_url", acme_bot), _form(site.url("/shipping"), "url", "6h"))
    assert response.status_code == 302
    source = KnowledgeSource.objects.get(bot=acme_bot)
    assert (source.kind, source.status, source.url) == ("url", "ready", site.url("/shipping"))
    assert source.sync_interval.total_seconds() == 6 * 3600
    page = client.get(_url("bot_knowledge", acme_bot)).content.decode()
    assert f'href="{site.url("/shipping")}"' in page and "Ready" in page


def test_agents_cannot_add_web_sources(client, agent, acme_bot):
    client.force_login(agent)
    response = client.post(_url("knowledge_add_url", acme_bot), _form("https://example.com/"))
    assert response.status_code == 403
    assert not KnowledgeSource.objects.exists()


def test_outsiders_cannot_add_web_sources_to_another_organizations_bot(client, outsider, acme_bot):
    client.force_login(outsider)
    response = client.post(_url("knowledge_add_url", acme_bot), _form("https://example.com/"))
    assert response.status_code == 404
    assert not KnowledgeSource.objects.exists()


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://files.example.com/faq.txt", "Address: Only http:// and https:// addresses"),
        ("help.example.com", "Address: help.example.com has no scheme"),
    ],
)
def test_a_bad_address_is_refused_on_the_page(client, owner, acme_bot, url, message):
    client.force_login(owner)
    response = client.post(_url("knowledge_add_url", acme_bot), _form(url))
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert f'value="{url}"' in page, "what was typed is kept for fixing"
    assert not KnowledgeSource.objects.exists()


def test_the_page_shows_why_a_web_source_failed_and_when_it_retries(
    client, owner, acme_bot, site, post
):
    client.force_login(owner)
    post(_url("knowledge_add_url", acme_bot), _form(site.url("/missing")))
    source = KnowledgeSource.objects.get()
    page = client.get(_url("bot_knowledge", acme_bot)).content.decode()
    assert f"{site.url('/missing')} answered 404 Not Found." in page
    assert "retry 1" in page and source.next_sync_at.strftime("%H:%M") in page
    assert "Replace" not in page, "web sources are changed at their address, not by upload"


def test_resync_fetches_a_web_page_again(client, owner, acme_bot, site, post):
    client.force_login(owner)
    site.put("/shipping", SHIPPING)
    post(_url("knowledge_add_url", acme_bot), _form(site.url("/shipping")))
    site.put("/shipping", SHIPPING.replace("3 to 5", "2 to 4"))
    source = KnowledgeSource.objects.get()
    post(_url("knowledge_resync", acme_bot, source.pk))
    assert "2 to 4" in Document.objects.get(source=source).body


def test_sync_status_reports_the_address_and_next_sync(client, owner, acme_bot, site, post):
    client.force_login(owner)
    site.put("/shipping", SHIPPING)
    post(_url("knowledge_add_url", acme_bot), _form(site.url("/shipping")))
    data = client.get(reverse("api_kb_sync_status") + "?org=acme&bot=acme-support").json()
    assert data["sources"][0]["url"] == site.url("/shipping")
    assert data["sources"][0]["next_sync_at"]


# --- Django admin -----------------------------------------------------------------------------
def test_admin_adds_a_sitemap_source_and_it_syncs(client, owner, acme_bot, site, post):
    client.force_login(owner)
    site.put("/shipping", SHIPPING)
    site.put("/sitemap.xml", f"<urlset><url><loc>{site.url('/shipping')}</loc></url></urlset>")
    response = post(
        reverse("admin:knowledge_knowledgesource_add"),
        {
            "bot": acme_bot.pk,
            "name": "Help centre",
            "kind": "sitemap",
            "url": site.url("/sitemap.xml"),
            "sync_interval": "1 00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    source = KnowledgeSource.objects.get()
    assert (source.name, source.kind, source.status, source.document_count) == (
        "Help centre",
        "sitemap",
        "ready",
        1,
    )


def test_admin_refuses_a_bad_address_at_the_field(client, owner, acme_bot):
    client.force_login(owner)
    response = client.post(
        reverse("admin:knowledge_knowledgesource_add"),
        {"bot": acme_bot.pk, "kind": "url", "url": "gopher://x.example", "sync_interval": "1"},
    )
    assert response.status_code == 200
    assert "Only http:// and https:// addresses" in response.content.decode()
    assert not KnowledgeSource.objects.exists()


def test_admin_web_sources_need_an_address_and_uploads_need_a_file(client, owner, acme_bot):
    client.force_login(owner)
    add = reverse("admin:knowledge_knowledgesource_add")
    page = client.post(add, {"bot": acme_bot.pk, "kind": "sitemap", "sync_interval": "1"})
    assert "Enter the address of a web page or a sitemap." in page.content.decode()
    page = client.post(add, {"bot": acme_bot.pk, "kind": "upload", "sync_interval": "1"})
    assert "Upload a file." in page.content.decode()
    assert not KnowledgeSource.objects.exists()


def test_admin_cannot_add_a_web_source_to_another_organizations_bot(client, outsider, acme_bot):
    client.force_login(outsider)
    response = client.post(
        reverse("admin:knowledge_knowledgesource_add"),
        {"bot": acme_bot.pk, "kind": "url", "url": "https://example.com/", "sync_interval": "1"},
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not KnowledgeSource.objects.exists()
