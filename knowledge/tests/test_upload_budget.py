"""Reading an upload has a budget (expanded bytes, pages, text, time), runs in a child process
the worker can stop, and never in the web request; a refused file leaves the previous version
serving (issue 12, finding 4)."""

import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from knowledge import isolation, parsers, services, sync
from knowledge.models import Document, KnowledgeSource
from knowledge.parsers import ParseBudget, ParseError, parse_upload
from knowledge.retrieval import search_documents
from knowledge.tests.conftest import FAQ_CSV
from knowledge.tests.pdfs import pdf_bomb, pdf_with_pages, text_pdf

MB = 1024 * 1024


# --- The budget, in the parser -----------------------------------------------------------------
def test_it_refuses_a_pdf_bomb_naming_the_page_that_expands():
    bomb = pdf_bomb()
    assert len(bomb) < 20_000, "a few KB on disk"
    with pytest.raises(ParseError, match=r'"bomb.pdf" page 1 expands to 1\.9 MB') as info:
        parse_upload(filename="bomb.pdf", data=bomb)
    assert "the limit is 1 MB" in str(info.value)


def test_it_refuses_a_pdf_whose_pages_together_expand_past_the_budget():
    pages = [b"BT /F1 12 Tf 72 720 Td " + b"(Words) Tj " * 3000 + b"ET"] * 3
    budget = ParseBudget(expanded_bytes=70_000)
    with pytest.raises(ParseError, match="expands to more than 68.4 KB of content"):
        parse_upload(filename="long.pdf", data=pdf_with_pages(pages), budget=budget)


def test_pypdf_itself_stops_a_stream_decompressing_past_the_budget():
    budget = ParseBudget(expanded_bytes=500_000, page_bytes=10 * MB)
    with pytest.raises(ParseError, match="expands to more than"):
        parse_upload(filename="bomb.pdf", data=pdf_bomb(pages=1), budget=budget)


def test_it_refuses_a_pdf_with_more_pages_than_the_budget():
    data = pdf_with_pages([b"BT /F1 12 Tf 72 720 Td (Hello) Tj ET"] * 3)
    with pytest.raises(ParseError, match='"many.pdf" has 3 pages; the limit is 2'):
        parse_upload(filename="many.pdf", data=data, budget=ParseBudget(pages=2))


@pytest.mark.parametrize(
    "name, data",
    [
        ("guide.md", b"# Guide\n\n" + b"Plug the router in. " * 100),
        (
            "faq.csv",
            b"question,answer\n" + b"".join(b"Q%d?,%s\n" % (i, b"A" * 99) for i in range(11)),
        ),
        ("guide.pdf", text_pdf(*["Plug the router in and wait for the light."] * 30)),
    ],
)
def test_the_text_budget_holds_for_every_format(name, data):
    with pytest.raises(ParseError, match=f'"{name}" holds more than 1 KB of text'):
        parse_upload(filename=name, data=data, budget=ParseBudget(text_bytes=1024))


# --- The child process -------------------------------------------------------------------------
def test_a_parse_past_its_time_is_killed(tmp_path):
    pid_file = tmp_path / "pid"
    with pytest.raises(ParseError, match="took longer than 3 s to read"):
        isolation.parse_isolated(
            filename=str(pid_file),
            data=b"anything",
            format="text",
            budget=ParseBudget(seconds=3),
            target="knowledge.tests.pdfs:parse_forever",
        )
    pid = int(pid_file.read_text())
    assert pid != os.getpid(), "it ran in a child process"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped, not left spinning


def test_the_time_budget_stops_a_real_pdf_read_when_the_byte_limits_allow_it():
    budget = ParseBudget(page_bytes=10 * MB, seconds=1)
    with pytest.raises(ParseError, match='"bomb.pdf" took longer than 1 s to read'):
        isolation.parse_isolated(filename="bomb.pdf", data=pdf_bomb(), format="pdf", budget=budget)


def test_the_child_answers_documents_and_line_errors_like_the_parser():
    budget = ParseBudget()
    docs = isolation.parse_isolated(filename="faq.csv", data=FAQ_CSV, format=None, budget=budget)
    assert docs == parse_upload(filename="faq.csv", data=FAQ_CSV)
    assert docs[0].kind == "faq" and docs[0].title == "How long does shipping take?"
    with pytest.raises(ParseError, match="Row 2: the answer column is empty"):
        isolation.parse_isolated(
            filename="faq.csv", data=b"question,answer\nWhy?,\n", format=None, budget=budget
        )


def test_the_settings_set_the_budget(settings):
    settings.KNOWLEDGE_PARSE_MAX_PAGE_MB = 3
    settings.KNOWLEDGE_PARSE_SECONDS = 7
    budget = isolation.parse_budget()
    assert (budget.page_bytes, budget.seconds) == (3 * MB, 7)


# --- Upload, check, serve ----------------------------------------------------------------------
def _forbid_parsing(monkeypatch):
    """Reading a file from here on fails the test: the web request must not."""

    def forbidden(**kwargs):
        raise AssertionError("the file was parsed in the web request")

    monkeypatch.setattr(sync, "parse_isolated", forbidden)
    monkeypatch.setattr(parsers, "parse_upload", forbidden)
    monkeypatch.setattr(parsers, "parse_pdf", forbidden)


def _url(name, bot, *args):
    return reverse(name, args=[bot.organization.slug, bot.slug, *args])


@pytest.mark.django_db
def test_a_bomb_upload_answers_at_once_then_is_refused_and_the_old_version_serves(
    client, owner, acme_bot, q_sync, django_capture_on_commit_callbacks
):
    source = services.source_upload(bot=acme_bot, filename="faq.csv", data=FAQ_CSV, sync_now=True)
    client.force_login(owner)
    with pytest.MonkeyPatch.context() as request_only:
        _forbid_parsing(request_only)
        with django_capture_on_commit_callbacks() as queued:
            response = client.post(
                _url("knowledge_replace", acme_bot, source.pk),
                {"file": SimpleUploadedFile("manual.pdf", pdf_bomb())},
            )
        assert response.status_code == 302
        source.refresh_from_db()
        assert source.status == "checking" and source.candidate_filename == "manual.pdf"
        assert source.filename == "faq.csv", "the serving version is untouched"
        page = client.get(_url("bot_knowledge", acme_bot)).content.decode()
        assert "Checking…" in page and "faq.csv keeps serving until it passes" in page
        status = client.get(reverse("api_kb_sync_status") + "?org=acme&bot=" + acme_bot.slug).json()
        assert status["syncing"] is True
        assert (status["sources"][0]["status"], status["sources"][0]["checking"]) == (
            "checking",
            "manual.pdf",
        )

    assert len(queued) == 1
    queued[0]()  # enqueue: django-q2 runs it at once here (Conf.SYNC), as the worker would

    source.refresh_from_db()
    assert source.status == "ready" and source.filename == "faq.csv"
    assert source.error.startswith('manual.pdf was refused: "manual.pdf" page 1 expands to')
    assert "The previous version (faq.csv) keeps serving." in source.error
    assert source.candidate is None and not source.candidate_filename
    assert Document.objects.filter(source=source).count() == 4
    top = search_documents(bot=acme_bot, query="return an item", k=1)[0]
    assert top.title == "Can I return an item?"
    page = client.get(_url("bot_knowledge", acme_bot)).content.decode()
    assert "manual.pdf was refused" in page and "Checking…" not in page
    status = client.get(reverse("api_kb_sync_status") + "?org=acme&bot=" + acme_bot.slug).json()
    assert status["sources"][0]["error"] == source.error
    assert status["sources"][0]["checking"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name, data, documents",
    [
        ("guide.pdf", text_pdf("Router setup guide", "Plug the router in."), 1),
        ("faq.csv", FAQ_CSV, 4),
        ("guide.md", b"# Router setup\n\nPlug the router in and wait for the light.", 1),
    ],
)
def test_a_good_upload_is_checked_in_the_worker_then_syncs_to_ready(
    client, owner, acme_bot, q_sync, django_capture_on_commit_callbacks, name, data, documents
):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            _url("knowledge_upload", acme_bot), {"file": SimpleUploadedFile(name, data)}
        )
    assert response.status_code == 302
    source = KnowledgeSource.objects.get(bot=acme_bot)
    assert (source.status, source.error, source.filename) == ("ready", "", name)
    assert source.candidate is None and bytes(source.content) == data
    assert source.document_count == documents


@pytest.mark.django_db
def test_a_first_upload_refused_leaves_a_failed_source_with_nothing_learnt(acme_bot):
    with pytest.raises(ParseError, match="page 1 expands"):
        services.source_upload(bot=acme_bot, filename="bomb.pdf", data=pdf_bomb(), sync_now=True)
    source = KnowledgeSource.objects.get(bot=acme_bot)
    assert source.status == "failed" and source.content is None
    assert source.error.startswith('bomb.pdf was refused: "bomb.pdf" page 1 expands')
    assert not Document.objects.filter(source=source).exists()


@pytest.mark.django_db
def test_a_check_overtaken_by_a_newer_upload_leaves_that_upload_alone(acme_bot):
    first = services.source_upload(bot=acme_bot, filename="faq.csv", data=FAQ_CSV)
    stale = KnowledgeSource.objects.get(pk=first.pk)  # what the first task loaded
    services.source_upload(bot=acme_bot, filename="new.csv", data=FAQ_CSV[:200], source=first)
    services.source_sync(source=stale)
    first.refresh_from_db()
    assert (first.status, first.candidate_filename) == ("checking", "new.csv")
    assert not Document.objects.filter(source=first).exists()
