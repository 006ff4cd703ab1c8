"""Web page and sitemap sources, against a real HTTP server on 127.0.0.1: fetched, parsed,
synced through the same path as uploads; a site that fails never loses what was learnt."""

import gzip
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_q.models import Schedule

from knowledge import services, web
from knowledge.models import Document, KnowledgeSource
from knowledge.retrieval import search_documents
from knowledge.tests.conftest import html_page, sitemap
from knowledge.tests.pdfs import pdf_bomb

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"

SHIPPING = html_page("Shipping times", "Standard shipping takes 3 to 5 business days.")
RETURNS = html_page("Returns", "Return any unused item within 30 days for a full refund.")
WARRANTY = html_page("Warranty", "Every router carries a two-year warranty against defects.")


@pytest.fixture
def add(q_sync, django_capture_on_commit_callbacks):
    """Add a web source; its first sync (enqueued on commit) runs before this returns."""

    def add_source(bot, url, kind=KnowledgeSource.Kind.URL, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            source = services.source_add_url(bot=bot, url=url, kind=kind, **kwargs)
        source.refresh_from_db()
        return source

    return add_source


def _sync(source):
    services.source_sync(source=source)
    source.refresh_from_db()
    return source


# --- A page -----------------------------------------------------------------------------------
def test_it_fetches_a_page_and_answers_from_it_citing_the_page(acme_bot, site, add):
    site.put("/help/shipping", SHIPPING)
    url = site.url("/help/shipping")
    source = add(acme_bot, url)

    assert source.status == KnowledgeSource.Status.READY, source.error
    assert (source.document_count, source.error, source.failure_count) == (1, "", 0)
    doc = Document.objects.get(source=source)
    assert (doc.external_id, doc.url, doc.title) == (url, url, "Shipping times")
    hit = search_documents(bot=acme_bot, query="how many days does delivery take", k=1)[0]
    assert (hit.title, hit.url) == ("Shipping times", url)
    assert site.requests[-1] == ("/help/shipping", web.USER_AGENT)
    assert source.next_sync_at - source.last_synced_at == source.sync_interval


def test_a_pdf_bomb_on_a_site_is_refused_with_its_page(site, acme_bot, add, monkeypatch):
    site.put("/manual.pdf", pdf_bomb(), "application/pdf")
    read_here = []
    monkeypatch.setattr(web, "parse_file", lambda **kwargs: read_here.append(kwargs))
    source = add(acme_bot, site.url("/manual.pdf"))
    assert source.status == KnowledgeSource.Status.FAILED
    assert "manual.pdf" in source.error and "page 1 expands to 1.9 MB" in source.error
    assert read_here == [], "a PDF is read in the child process that can be stopped"


def test_it_follows_redirects_and_reads_other_formats(site, acme_bot, add):
    site.put("/old", "", status=301, Location=site.url("/faq.md"))
    site.put("/faq.md", "# Returns\n\nReturn any unused item within 30 days.", "text/plain")
    site.put("/guide", (FIXTURES / "router-guide.pdf").read_bytes(), "application/pdf")
    site.put(
        "/articles",
        '{"id": "a1", "title": "Card fees", "body": "No fees in Europe."}\n'
        '{"id": "a2", "title": "Limits", "body": "5,000 a day.", "url": "https://x.example/l"}',
        "application/x-ndjson",
    )
    md = add(acme_bot, site.url("/old"))
    pdf = add(acme_bot, site.url("/guide"))
    jsonl = add(acme_bot, site.url("/articles"))

    assert Document.objects.get(source=md).title == "Returns"
    assert Document.objects.get(source=pdf).body.strip()
    by_id = {d.external_id: d.url for d in Document.objects.filter(source=jsonl)}
    assert by_id == {
        site.url("/articles") + "#a1": site.url("/articles"),
        site.url("/articles") + "#a2": "https://x.example/l",
    }


def test_a_page_that_changes_is_updated_on_the_next_sync(acme_bot, site, add):
    site.put("/shipping", SHIPPING)
    source = add(acme_bot, site.url("/shipping"))
    site.put("/shipping", SHIPPING.replace("3 to 5", "2 to 4"))
    _sync(source)
    doc = Document.objects.get(source=source)
    assert doc.version == 2 and "2 to 4" in doc.body


# --- Failures ---------------------------------------------------------------------------------
def test_an_unreachable_site_fails_keeps_the_knowledge_and_backs_off(acme_bot, site, add):
    site.put("/shipping", SHIPPING)
    source = add(acme_bot, site.url("/shipping"), sync_interval=timedelta(minutes=8))
    site.stop()

    before = timezone.now()
    _sync(source)
    assert source.status == KnowledgeSource.Status.FAILED
    assert source.error == f"Could not reach {site.url('/shipping')}: connection refused."
    assert source.failure_count == 1
    assert (
        before + timedelta(minutes=5)
        <= source.next_sync_at
        <= timezone.now() + timedelta(minutes=5)
    )
    hit = search_documents(bot=acme_bot, query="how long is shipping", k=1)[0]
    assert hit.title == "Shipping times", "the previous version keeps serving"

    _sync(source)  # 10 minutes would be next, but never later than the 8-minute interval
    assert source.failure_count == 2
    assert source.next_sync_at <= timezone.now() + timedelta(minutes=8)
    assert source.next_sync_at > timezone.now() + timedelta(minutes=7)


def test_a_page_that_answers_404_fails_with_the_status(acme_bot, site, add):
    source = add(acme_bot, site.url("/gone"))
    assert source.status == KnowledgeSource.Status.FAILED
    assert source.error == f"{site.url('/gone')} answered 404 Not Found."
    assert source.document_count == 0


def test_a_success_after_failures_resets_the_backoff(acme_bot, site, add):
    source = add(acme_bot, site.url("/later"))
    assert source.failure_count == 1
    site.put("/later", SHIPPING)
    _sync(source)
    assert (source.status, source.failure_count, source.error) == ("ready", 0, "")
    assert source.next_sync_at > timezone.now() + timedelta(hours=23)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_a_response_over_the_limit_is_refused(acme_bot, site, add, monkeypatch, declared):
    monkeypatch.setattr(web, "MAX_UPLOAD_BYTES", 2 * 1024 * 1024)
    body = b"x" * (3 * 1024 * 1024)
    if declared:
        site.put("/big.txt", body, "text/plain")
    else:  # no length up front: the cap applies while reading
        site.put("/big.txt", body, "text/plain", Connection="close", **{"Content-Length": None})
    source = add(acme_bot, site.url("/big.txt"))
    assert source.status == KnowledgeSource.Status.FAILED
    expected = "is 3.0 MB; the limit for one page is 2 MB" if declared else "larger than 2 MB"
    assert expected in source.error, source.error
    assert not Document.objects.exists()


def test_a_page_with_nothing_to_learn_fails_naming_the_page(acme_bot, site, add):
    site.put("/logo.png", b"\x89PNG\r\n\x1a\n\x00\x00binary", "image/png")
    source = add(acme_bot, site.url("/logo.png"))
    assert source.status == KnowledgeSource.Status.FAILED
    assert source.error.startswith(site.url("/logo.png") + ": it is image/png")


def test_private_addresses_are_refused_unless_allowed(acme_bot, site, add, settings):
    settings.KNOWLEDGE_FETCH_PRIVATE_NETWORKS = False
    site.put("/shipping", SHIPPING)
    source = add(acme_bot, site.url("/shipping"))
    assert source.status == KnowledgeSource.Status.FAILED
    assert "private network (127.0.0.1)" in source.error
    assert site.requests == []


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://files.example.com/faq.txt", 'not "ftp:"'),
        ("file:///etc/passwd", 'not "file:"'),
        ("javascript:alert(1)", 'not "javascript:"'),
        ("help.example.com/faq", "has no scheme: write it in full, like https://help.example.com"),
        ("https://", "is not a valid web address"),
        ("https://user:secret@example.com/", "user name or password"),
        ("", "Enter the address"),
    ],
)
def test_addresses_that_cannot_be_fetched_are_refused_up_front(acme_bot, url, message):
    with pytest.raises(ValidationError) as info:
        services.source_add_url(bot=acme_bot, url=url, kind="url")
    assert message in info.value.messages[0]
    assert not KnowledgeSource.objects.exists()


def test_one_word_intranet_hosts_are_valid_only_with_private_networks_allowed(settings):
    with pytest.raises(ValidationError, match="not a valid web address"):
        web.url_clean("http://wiki/help")
    settings.KNOWLEDGE_FETCH_PRIVATE_NETWORKS = True
    assert web.url_clean("http://wiki/help") == "http://wiki/help"


def test_the_same_address_twice_is_refused(acme_bot, site, add):
    add(acme_bot, site.url("/a"))
    with pytest.raises(ValidationError, match="already a source"):
        services.source_add_url(bot=acme_bot, url=site.url("/a#top"), kind="url")


# --- Sitemaps ---------------------------------------------------------------------------------
def test_a_sitemap_page_that_fails_keeps_its_previous_version(acme_bot, site, add):
    for path, page in [("/shipping", SHIPPING), ("/returns", RETURNS), ("/warranty", WARRANTY)]:
        site.put(path, page)
    urls = [site.url(p) for p in ("/shipping", "/returns", "/warranty")]
    site.put("/sitemap.xml", sitemap(*urls), "application/xml")
    source = add(acme_bot, site.url("/sitemap.xml"), kind=KnowledgeSource.Kind.SITEMAP)
    assert (source.status, source.document_count, source.error) == ("ready", 3, "")
    assert set(Document.objects.values_list("url", flat=True)) == set(urls)

    site.put("/shipping", SHIPPING.replace("3 to 5", "2 to 4"))
    site.remove("/warranty")
    _sync(source)

    assert source.status == KnowledgeSource.Status.READY
    assert source.error.startswith("1 of 3 pages could not be fetched")
    assert f"{urls[2]} answered 404 Not Found." in source.error
    assert "2 to 4" in Document.objects.get(url=urls[0]).body
    warranty = Document.objects.get(url=urls[2])
    assert (warranty.version, warranty.chunks.count()) == (1, 2), "kept as it was, not re-embedded"
    hit = search_documents(bot=acme_bot, query="router warranty", k=1)[0]
    assert hit.url == urls[2]


def test_a_page_dropped_from_the_sitemap_is_removed(acme_bot, site, add):
    site.put("/shipping", SHIPPING)
    site.put("/returns", RETURNS)
    site.put("/sitemap.xml", sitemap(site.url("/shipping"), site.url("/returns")))
    source = add(acme_bot, site.url("/sitemap.xml"), kind="sitemap")
    site.put("/sitemap.xml", sitemap(site.url("/shipping")))
    _sync(source)
    assert list(Document.objects.values_list("title", flat=True)) == ["Shipping times"]


def test_a_sitemap_that_fails_keeps_every_page(acme_bot, site, add):
    site.put("/shipping", SHIPPING)
    site.put("/sitemap.xml", sitemap(site.url("/shipping")))
    source = add(acme_bot, site.url("/sitemap.xml"), kind="sitemap")
    site.put("/sitemap.xml", "<urlset><url><loc>oops</url></urlset>", "application/xml")
    _sync(source)
    assert source.status == KnowledgeSource.Status.FAILED
    assert source.error.startswith(f"{site.url('/sitemap.xml')} is not a valid sitemap: line 1")
    assert source.document_count == 1 and Document.objects.count() == 1


def test_when_every_page_fails_the_source_fails(acme_bot, site, add):
    site.put("/shipping", SHIPPING)
    site.put("/sitemap.xml", sitemap(site.url("/shipping")))
    source = add(acme_bot, site.url("/sitemap.xml"), kind="sitemap")
    site.remove("/shipping")
    _sync(source)
    assert source.status == KnowledgeSource.Status.FAILED
    assert source.error.startswith("None of the 1 pages could be fetched.")
    assert source.failure_count == 1 and Document.objects.count() == 1


def test_a_sitemap_index_is_followed_one_level_and_pages_are_capped(acme_bot, site, add, settings):
    settings.KNOWLEDGE_SITEMAP_MAX_PAGES = 2
    for path, page in [("/shipping", SHIPPING), ("/returns", RETURNS), ("/warranty", WARRANTY)]:
        site.put(path, page)
    site.put("/a.xml", sitemap(site.url("/shipping"), site.url("/returns")))
    site.put("/b.xml", sitemap(site.url("/warranty"), site.url("/shipping")))
    site.put("/index.xml", sitemap(site.url("/a.xml"), site.url("/b.xml"), index=True))
    source = add(acme_bot, site.url("/index.xml"), kind="sitemap")
    assert source.status == KnowledgeSource.Status.READY
    assert source.error == (
        "The sitemap lists 3 pages; the first 2 are synced (KNOWLEDGE_SITEMAP_MAX_PAGES)."
    )
    assert source.document_count == 2


def test_a_sitemap_with_entities_is_refused(acme_bot, site, add):
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;">]><urlset><url><loc>&lol2;</loc></url></urlset>'
    )
    site.put("/sitemap.xml", bomb, "application/xml")
    source = add(acme_bot, site.url("/sitemap.xml"), kind="sitemap")
    assert source.status == KnowledgeSource.Status.FAILED
    assert "declares XML entities or a DTD" in source.error


def test_an_html_page_is_not_a_sitemap(acme_bot, site, add):
    site.put("/", "<html><body><p>Hi</p></body></html>")
    source = add(acme_bot, site.url("/"), kind="sitemap")
    assert source.error == f"{site.url('/')} is not a sitemap: expected <urlset> or " + (
        "<sitemapindex>, found <html>."
    )


# --- The schedule -----------------------------------------------------------------------------
def test_the_schedule_queues_only_due_web_sources_once(
    acme_bot, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(services, "enqueue_source_sync", queued.append)
    past, future = timezone.now() - timedelta(minutes=1), timezone.now() + timedelta(hours=1)

    def make(name, **fields):
        fields = {"kind": "url", "url": f"https://example.com/{name}", **fields}
        return KnowledgeSource.objects.create(bot=acme_bot, name=name, **fields)

    due = make("due", status="ready", next_sync_at=past)
    failed = make("failed", status="failed", next_sync_at=past)
    make("later", status="ready", next_sync_at=future)
    make("queued", status="pending", next_sync_at=past)
    make("upload", kind="upload", url="", status="ready", next_sync_at=past)
    lost = make("lost", status="syncing", next_sync_at=past)
    KnowledgeSource.objects.filter(pk=lost.pk).update(updated_at=past - timedelta(hours=2))

    with django_capture_on_commit_callbacks(execute=True):
        assert services.sources_enqueue_due() == 3
    assert sorted(queued) == sorted([due.pk, failed.pk, lost.pk])
    assert KnowledgeSource.objects.get(pk=due.pk).status == "pending"
    assert services.sources_enqueue_due() == 0, "pending ones are not queued twice"


def test_the_schedule_is_installed_by_the_migration():
    schedule = Schedule.objects.get(func="knowledge.tasks.sources_sync_due")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == ("I", 5, -1)


# --- Sitemap shapes (no network) --------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        sitemap("https://a.example/1", "https://a.example/2").encode(),
        gzip.compress(sitemap("https://a.example/1", "https://a.example/2").encode()),
        b"https://a.example/1\n\nnot a url\nhttps://a.example/2\n",
    ],
    ids=["xml", "gzipped", "plain-text"],
)
def test_it_reads_every_sitemap_form(data):
    fetched = web.Fetched(url="https://a.example/sitemap", content_type="", data=data)
    assert web._sitemap(fetched) == ("urlset", ["https://a.example/1", "https://a.example/2"])
