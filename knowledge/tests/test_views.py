"""The knowledge page, its actions and the sync status API, with tenant isolation."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from knowledge.models import Document, KnowledgeSource
from knowledge.parsers import MAX_UPLOAD_BYTES
from knowledge.tests.conftest import FAQ_CSV

pytestmark = pytest.mark.django_db


def _url(name, bot, *args):
    return reverse(name, args=[bot.organization.slug, bot.slug, *args])


def _file(data=FAQ_CSV, name="faq.csv"):
    return SimpleUploadedFile(name, data, content_type="text/csv")


@pytest.fixture
def upload(client, q_sync, django_capture_on_commit_callbacks):
    """POST a file as the signed-in user; the sync it enqueues runs before this returns."""

    def post(url, file=None):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, {"file": file or _file()})

    return post


def test_the_knowledge_page_is_for_members_only(client, agent, outsider, acme_bot):
    url = _url("bot_knowledge", acme_bot)
    assert client.get(url).status_code == 302
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    client.force_login(agent)
    assert client.get(url).status_code == 200


def test_an_owner_uploads_an_faq_and_it_syncs(client, owner, acme_bot, upload):
    client.force_login(owner)
    response = upload(_url("knowledge_upload", acme_bot))
    assert response.status_code == 302
    source = KnowledgeSource.objects.get(bot=acme_bot)
    assert source.status == "ready" and source.document_count == 4
    page = client.get(_url("bot_knowledge", acme_bot)).content.decode()
    assert "faq.csv" in page and "Ready" in page


def test_a_malformed_file_is_refused_with_its_line_and_nothing_is_kept(
    client, owner, acme_bot, upload
):
    client.force_login(owner)
    bad = b"question,answer\nWhere is my order?,\n"
    response = upload(_url("knowledge_upload", acme_bot), _file(bad))
    assert response.status_code == 302  # read by the worker, not in the request
    source = KnowledgeSource.objects.get()
    assert source.status == "failed"
    assert "Row 2: the answer column is empty" in source.error  # the row at fault is named
    assert source.content is None and not Document.objects.exists()
    page = client.get(_url("bot_knowledge", acme_bot)).content.decode()
    assert "Row 2: the answer column is empty" in page


def test_an_unknown_format_is_refused_in_the_request(client, owner, acme_bot):
    client.force_login(owner)
    response = client.post(
        _url("knowledge_upload", acme_bot), {"file": _file(b"\x00\x01binary", "data.bin")}
    )
    assert response.status_code == 400
    assert "Accepted:" in response.content.decode()
    assert not KnowledgeSource.objects.exists()


def test_a_file_over_the_limit_is_refused_before_parsing(client, owner, acme_bot):
    client.force_login(owner)
    big = _file(b"x" * (MAX_UPLOAD_BYTES + 1), "huge.txt")
    response = client.post(_url("knowledge_upload", acme_bot), {"file": big})
    assert response.status_code == 400
    assert "the limit is" in response.content.decode()


def test_a_bad_replacement_keeps_the_old_version(client, owner, acme_bot, upload):
    client.force_login(owner)
    upload(_url("knowledge_upload", acme_bot))
    source = KnowledgeSource.objects.get()
    response = upload(_url("knowledge_replace", acme_bot, source.pk), _file(b"\xff\xfe\x00garbage"))
    assert response.status_code == 302  # read by the worker, not in the request
    source.refresh_from_db()
    assert "keeps serving" in source.error and source.filename == "faq.csv"
    assert "keeps serving" in client.get(_url("bot_knowledge", acme_bot)).content.decode()
    assert Document.objects.filter(source=source).count() == 4


def test_agents_cannot_change_knowledge(client, agent, acme_bot):
    client.force_login(agent)
    response = client.post(_url("knowledge_upload", acme_bot), {"file": _file()})
    assert response.status_code == 403


def test_outsiders_cannot_touch_another_bots_sources(client, owner, outsider, acme_bot, upload):
    client.force_login(owner)
    upload(_url("knowledge_upload", acme_bot))
    source = KnowledgeSource.objects.get()
    client.force_login(outsider)
    for name in ("knowledge_resync", "knowledge_delete"):
        assert client.post(_url(name, acme_bot, source.pk)).status_code == 404
    assert KnowledgeSource.objects.filter(pk=source.pk).exists()


def test_the_owner_deletes_a_source(client, owner, acme_bot, upload):
    client.force_login(owner)
    upload(_url("knowledge_upload", acme_bot))
    source = KnowledgeSource.objects.get()
    client.post(_url("knowledge_delete", acme_bot, source.pk))
    assert not KnowledgeSource.objects.exists() and not Document.objects.exists()


def test_sync_status_with_the_bot_secret(client, owner, acme_bot, globex_bot, upload):
    client.force_login(owner)
    upload(_url("knowledge_upload", acme_bot))
    client.logout()
    url = reverse("api_kb_sync_status")
    data = client.get(url, HTTP_AUTHORIZATION=f"Bearer {acme_bot.secret_key}").json()
    assert data["sources"][0]["status"] == "ready"
    assert data["sources"][0]["documents"] == 4
    other = client.get(url, HTTP_AUTHORIZATION=f"Bearer {globex_bot.secret_key}").json()
    assert other["sources"] == []
    assert client.get(url, HTTP_AUTHORIZATION="Bearer sk_wrong").status_code == 401
    assert client.get(url).status_code == 401


def test_sync_status_for_a_signed_in_member(client, agent, outsider, acme_bot):
    url = reverse("api_kb_sync_status") + "?org=acme&bot=" + acme_bot.slug
    client.force_login(agent)
    assert client.get(url).json()["syncing"] is False
    client.force_login(outsider)
    assert client.get(url).status_code == 404


def test_admin_shows_sources_of_ones_own_organization_only(
    client, owner, outsider, acme_bot, upload
):
    client.force_login(owner)
    upload(_url("knowledge_upload", acme_bot))
    changelist = reverse("admin:knowledge_knowledgesource_changelist")
    assert "faq.csv" in client.get(changelist).content.decode()
    client.force_login(outsider)
    assert "faq.csv" not in client.get(changelist).content.decode()
    source = KnowledgeSource.objects.get()
    response = client.get(reverse("admin:knowledge_knowledgesource_change", args=[source.pk]))
    assert response.status_code == 302


def test_resync_shows_the_source_pending_until_the_worker_runs(client, owner, acme_bot, upload):
    client.force_login(owner)
    upload(_url("knowledge_upload", acme_bot))
    source = KnowledgeSource.objects.get()
    client.post(_url("knowledge_resync", acme_bot, source.pk))
    source.refresh_from_db()
    assert source.status == "pending"
    page = client.get(_url("bot_knowledge", acme_bot)).content.decode()
    assert 'hx-trigger="every 2s"' in page, "the page polls while a sync is pending"


def test_admin_upload_refuses_a_malformed_file_with_its_row(
    client, owner, acme_bot, q_sync, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:knowledge_knowledgesource_add"),
            {
                "bot": acme_bot.pk,
                "name": "Broken",
                "kind": "upload",
                "sync_interval": "1 00:00:00",
                "upload": _file(b"question,answer\nWhy?,\n"),
            },
        )
    assert response.status_code == 302  # read by the worker, not in the request
    source = KnowledgeSource.objects.get()
    assert source.status == "failed" and "Row 2" in source.error
    assert not Document.objects.exists()
    change = reverse("admin:knowledge_knowledgesource_change", args=[source.pk])
    assert "Row 2" in client.get(change).content.decode()


def test_admin_upload_refuses_an_unknown_format_at_the_field(client, owner, acme_bot):
    client.force_login(owner)
    response = client.post(
        reverse("admin:knowledge_knowledgesource_add"),
        {"bot": acme_bot.pk, "name": "Junk", "upload": _file(b"\x00\x01binary", "data.bin")},
    )
    assert response.status_code == 200
    assert "Accepted:" in response.content.decode()
    assert not KnowledgeSource.objects.exists()
