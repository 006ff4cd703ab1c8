"""Answers from the team: saved by agents, synced through the worker's path as any FAQ source
is (parsed, chunked, embedded, indexed), retrieved and cited by name; listed and deleted on the
bot's knowledge page, with tenant isolation."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from knowledge import retrieval, services
from knowledge.models import Chunk, Document, KnowledgeSource, RetrievalProfile, TeamAnswer
from knowledge.parsers import ParseError
from knowledge.tests.conftest import FAQ_CSV

pytestmark = pytest.mark.django_db

BITCOIN_Q = "Can I pay with Bitcoin?"
BITCOIN_A = (
    "We do not take Bitcoin or other cryptocurrencies; pay by card, PayPal or bank transfer."
)


@pytest.fixture
def worker(q_sync, django_capture_on_commit_callbacks):
    """Runs what a call queues on commit, django-q2 tasks included, as the worker would."""

    def run(call, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return call(**kwargs)

    return run


@pytest.fixture
def stocked(acme_bot):
    services.source_upload(bot=acme_bot, filename="faq.csv", data=FAQ_CSV, sync_now=True)
    return acme_bot


def _team(bot):
    return KnowledgeSource.objects.get(bot=bot, kind=KnowledgeSource.Kind.TEAM)


def test_it_saves_an_answer_and_the_worker_syncs_it_like_any_faq(worker, stocked, agent):
    saved = worker(
        services.team_answer_save,
        bot=stocked,
        question="  Can I pay   with Bitcoin? ",
        answer=BITCOIN_A,
        conversation_id=42,
        user=agent,
    )
    assert (saved.question, saved.conversation_id, saved.created_by) == (BITCOIN_Q, 42, agent)
    source = _team(stocked)
    assert (source.name, source.status, source.format) == (
        "Answers from the team",
        "ready",
        "faq_csv",
    )
    assert (source.document_count, source.chunk_count) == (1, 1)
    document = Document.objects.get(source=source)
    assert (document.kind, document.title, document.body) == ("faq", BITCOIN_Q, BITCOIN_A)
    assert Chunk.objects.filter(document=document, kind=Chunk.Kind.FAQ).count() == 1
    # The keyword index was rebuilt over the new chunk too (the same after-effects as any sync).
    profile = RetrievalProfile.objects.get(bot=stocked)
    assert profile.checksum

    hits = retrieval.search_documents(bot=stocked, query="Do you accept crypto like bitcoin?")
    assert hits[0].document_id == document.pk
    assert hits[0].source == "Answers from the team"
    uploaded = retrieval.search_documents(bot=stocked, query="How long does shipping take?")
    assert uploaded[0].title == "How long does shipping take?" and uploaded[0].source == ""


def test_a_second_answer_joins_the_same_source(worker, acme_bot):
    worker(services.team_answer_save, bot=acme_bot, question=BITCOIN_Q, answer=BITCOIN_A)
    worker(
        services.team_answer_save,
        bot=acme_bot,
        question="Do you ship to Iceland?",
        answer="Yes, in 5 to 8 business days.",
    )
    assert KnowledgeSource.objects.filter(bot=acme_bot).count() == 1
    assert _team(acme_bot).document_count == 2


@pytest.mark.parametrize(
    ("question", "answer", "field", "message"),
    [
        ("", BITCOIN_A, "question", "Write the customer's question."),
        ("   ", BITCOIN_A, "question", "Write the customer's question."),
        (BITCOIN_Q, "  \n ", "answer", "Write the answer the bot should give."),
        ("x" * 301, BITCOIN_A, "question", "Keep the question under 300 characters."),
        (BITCOIN_Q, "x" * 5001, "answer", "Keep the answer under 5000 characters."),
    ],
)
def test_it_refuses_an_empty_or_too_long_field_and_saves_nothing(
    acme_bot, question, answer, field, message
):
    with pytest.raises(ValidationError) as refused:
        services.team_answer_save(bot=acme_bot, question=question, answer=answer)
    assert refused.value.message_dict == {field: [message]}
    assert not TeamAnswer.objects.exists() and not KnowledgeSource.objects.exists()


def test_it_refuses_a_question_the_team_already_answered(worker, acme_bot):
    worker(services.team_answer_save, bot=acme_bot, question=BITCOIN_Q, answer=BITCOIN_A)
    with pytest.raises(ValidationError) as refused:
        services.team_answer_save(bot=acme_bot, question="can i pay with BITCOIN?", answer="No.")
    assert "already answered “Can I pay with Bitcoin?”" in refused.value.message_dict["question"][0]
    assert TeamAnswer.objects.get().answer == BITCOIN_A
    assert _team(acme_bot).status == "ready"


def test_the_same_question_for_another_bot_is_its_own(worker, acme_bot, globex_bot):
    worker(services.team_answer_save, bot=acme_bot, question=BITCOIN_Q, answer=BITCOIN_A)
    worker(services.team_answer_save, bot=globex_bot, question=BITCOIN_Q, answer="Yes, we do.")
    assert Document.objects.get(bot=globex_bot).body == "Yes, we do."
    assert Document.objects.get(bot=acme_bot).body == BITCOIN_A


def test_deleting_an_answer_removes_it_from_the_bot_after_the_sync(worker, stocked):
    kept = worker(
        services.team_answer_save, bot=stocked, question="Do you ship to Iceland?", answer="Yes."
    )
    gone = worker(services.team_answer_save, bot=stocked, question=BITCOIN_Q, answer=BITCOIN_A)
    worker(services.team_answer_delete, answer=gone)
    source = _team(stocked)
    assert source.status == "ready" and source.document_count == 1
    assert list(Document.objects.filter(source=source).values_list("title", flat=True)) == [
        kept.question
    ]
    worker(services.team_answer_delete, answer=kept)
    source.refresh_from_db()
    assert (source.status, source.document_count, source.chunk_count) == ("ready", 0, 0)
    assert not Chunk.objects.filter(document__source=source).exists()


def test_the_team_source_cannot_be_replaced_by_an_upload(worker, acme_bot):
    worker(services.team_answer_save, bot=acme_bot, question=BITCOIN_Q, answer=BITCOIN_A)
    with pytest.raises(ParseError, match="written by saving answers from conversations"):
        services.source_upload(
            bot=acme_bot, filename="faq.csv", data=FAQ_CSV, source=_team(acme_bot)
        )
    assert Document.objects.get(bot=acme_bot).title == BITCOIN_Q


def test_deleting_the_team_source_deletes_its_answers(worker, acme_bot):
    worker(services.team_answer_save, bot=acme_bot, question=BITCOIN_Q, answer=BITCOIN_A)
    services.source_delete(source=_team(acme_bot))
    assert not TeamAnswer.objects.exists() and not Document.objects.exists()


# --- The knowledge page ---------------------------------------------------------------------
def _url(name, bot, *args):
    return reverse(name, args=[bot.organization.slug, bot.slug, *args])


@pytest.fixture
def bitcoin(worker, acme_bot, agent):
    return worker(
        services.team_answer_save,
        bot=acme_bot,
        question=BITCOIN_Q,
        answer=BITCOIN_A,
        conversation_id=7,
        user=agent,
    )


def test_members_see_the_team_answers_on_the_knowledge_page(client, agent, bitcoin):
    client.force_login(agent)
    html = client.get(_url("bot_knowledge", bitcoin.bot)).content.decode()
    assert 'id="team-answers"' in html and BITCOIN_Q in html and "by Sam" in html
    assert "/o/acme/console/c/7/" in html
    assert "knowledge/team/" not in html, "agents see no Delete"


def test_an_owner_deletes_a_team_answer(
    client, owner, bitcoin, q_sync, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    url = _url("knowledge_team_answer_delete", bitcoin.bot, bitcoin.pk)
    assert url in client.get(_url("bot_knowledge", bitcoin.bot)).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)
    assert response.status_code == 302
    assert not TeamAnswer.objects.exists() and not Document.objects.exists()


def test_an_agent_cannot_delete_a_team_answer(client, agent, bitcoin):
    client.force_login(agent)
    response = client.post(_url("knowledge_team_answer_delete", bitcoin.bot, bitcoin.pk))
    assert response.status_code == 403
    assert TeamAnswer.objects.filter(pk=bitcoin.pk).exists()


def test_olga_of_globex_never_sees_or_deletes_acmes_team_answers(
    client, outsider, globex_bot, bitcoin
):
    client.force_login(outsider)
    assert client.get(_url("bot_knowledge", bitcoin.bot)).status_code == 404
    assert (
        client.post(_url("knowledge_team_answer_delete", bitcoin.bot, bitcoin.pk)).status_code
        == 404
    )
    # Nor through her own bot's address with Acme's answer id.
    page = client.get(_url("bot_knowledge", globex_bot)).content.decode()
    assert BITCOIN_Q not in page
    response = client.post(_url("knowledge_team_answer_delete", globex_bot, bitcoin.pk))
    assert response.status_code == 404
    assert TeamAnswer.objects.filter(pk=bitcoin.pk).exists()


def test_the_replace_form_is_not_offered_for_the_team_source(client, owner, bitcoin):
    client.force_login(owner)
    source = _team(bitcoin.bot)
    html = client.get(_url("bot_knowledge", bitcoin.bot)).content.decode()
    assert _url("knowledge_resync", bitcoin.bot, source.pk) in html
    assert _url("knowledge_replace", bitcoin.bot, source.pk) not in html
    response = client.post(
        _url("knowledge_replace", bitcoin.bot, source.pk),
        {"file": SimpleUploadedFile("faq.csv", FAQ_CSV, content_type="text/csv")},
    )
    assert response.status_code == 400
    assert "written by saving answers from conversations" in response.content.decode()
    assert Document.objects.get(bot=bitcoin.bot).title == BITCOIN_Q


# --- Django admin -----------------------------------------------------------------------------
def test_admin_cannot_add_a_team_source_by_hand(client, owner, acme_bot):
    client.force_login(owner)
    response = client.post(
        reverse("admin:knowledge_knowledgesource_add"),
        {"bot": acme_bot.pk, "kind": "team", "name": "Mine", "sync_interval": "1"},
    )
    assert response.status_code == 200
    assert "Answers from the team are saved from the console." in response.content.decode()
    assert not KnowledgeSource.objects.exists()


def test_admin_lists_team_answers_but_deletes_them_only_through_the_knowledge_page(
    client, owner, bitcoin
):
    client.force_login(owner)
    changelist = client.get(reverse("admin:knowledge_teamanswer_changelist"))
    assert changelist.status_code == 200 and BITCOIN_Q in changelist.content.decode()
    delete = reverse("admin:knowledge_teamanswer_delete", args=[bitcoin.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert TeamAnswer.objects.filter(pk=bitcoin.pk).exists()


def test_olga_sees_no_acme_team_answer_in_admin(client, outsider, bitcoin):
    client.force_login(outsider)
    changelist = client.get(reverse("admin:knowledge_teamanswer_changelist"))
    assert changelist.status_code == 200 and BITCOIN_Q not in changelist.content.decode()
    change = client.get(reverse("admin:knowledge_teamanswer_change", args=[bitcoin.pk]))
    # Django admin answers a row outside the queryset with a redirect and "doesn't exist".
    assert change.status_code == 302
    assert BITCOIN_Q not in client.get(change.url).content.decode()


def test_questions_differing_only_as_the_faq_parser_ignores_are_one_question(worker, acme_bot):
    worker(services.team_answer_save, bot=acme_bot, question="Wo ist die Straße?", answer="Hier.")
    with pytest.raises(ValidationError):
        services.team_answer_save(bot=acme_bot, question="WO IST DIE STRASSE?", answer="Dort.")
    assert _team(acme_bot).status == "ready" and TeamAnswer.objects.count() == 1
