"""Each bot chooses its ranking from its own content (knowledge/tuning.py), and the keyword
index behind it keeps to the bot, its filters and its latest sync."""

import json
import random

import pytest
from django.urls import reverse

from knowledge import services, tasks
from knowledge.models import RetrievalProfile
from knowledge.retrieval import profile_load, search_documents

pytestmark = pytest.mark.django_db

# A product manual: sections read alike (menus, buttons, safety), and what tells them apart is
# the module's model number, which customers quote too and embeddings barely tell apart.
FEATURES = [f"KX-{n}" for n in random.Random(3).sample(range(1000, 9999), 24)]
# What every manual says somewhere: each section carries a few of these, so sections differ in
# everyday words more than in the one word a customer asks about.
GENERIC = [
    "Make sure the device is charged and switched on before you start.",
    "Open the main menu with the round button on the side.",
    "Scroll through the options with the wheel and confirm with a long press.",
    "The display shows a green check mark once the change is saved.",
    "If the screen stays dark, hold the round button for ten seconds.",
    "Keep the device away from water, dust and direct heat.",
    "Changes apply to every paired speaker in the same room.",
    "The battery lasts longer when the brightness is turned down.",
    "Firmware updates arrive automatically over the home network.",
    "Children should only use the device under supervision.",
    "Clean the surface with a soft dry cloth, never with solvents.",
    "You can restore the factory settings from the service menu.",
]


def manual_sections(names=FEATURES) -> list[dict]:
    rng = random.Random(7)
    sections = []
    for i, name in enumerate(names):
        generic = " ".join(rng.sample(GENERIC, 5))
        sections.append(
            {
                "id": f"section-{i}",
                "title": f"Setting up the {name} module",
                "body": (
                    f"{generic}\n\nIn the menu, choose {name} and set it to the level you like. "
                    f"{name} remembers that level after a restart, and you can turn {name} off "
                    f"again from the same menu at any time."
                ),
            }
        )
    return sections


# Help articles where the questions' words are not the answers' words: what a passage means
# finds it, not a shared term.
PLAIN = [
    ("How long until my parcel arrives?", "Orders reach most addresses within three days."),
    ("Can I get my money back?", "Refunds are paid to the original card within a week."),
    ("I forgot my password", "Use the reset link on the sign-in screen to choose a new one."),
    ("Is my card information safe?", "Payments are encrypted and we never store full numbers."),
    ("Do you ship abroad?", "We deliver to forty countries across Europe and Asia."),
    ("How do I cancel my subscription?", "Stop the plan from your account page, any time."),
    ("Where can I find my invoice?", "Every bill is e-mailed and kept under Billing history."),
    ("The app keeps crashing", "Update to the latest version and restart your phone."),
    ("Can I change my delivery address?", "Edit where the order goes until it is packed."),
    ("Do you have a student discount?", "Learners with a valid ID pay twenty percent less."),
    ("How do I contact support?", "Write to us by chat or e-mail, seven days a week."),
    ("Is there a warranty?", "Every product is covered against defects for two years."),
    ("What payment methods are accepted?", "Visa, Mastercard, PayPal and bank transfer work."),
    ("Can I pick up in store?", "Collect your order at any branch the next afternoon."),
    ("My package arrived damaged", "Send us a photo and we replace the broken item free."),
    ("How do I delete my account?", "Ask us by e-mail and we erase your data in a month."),
    ("Can I buy a gift card?", "Vouchers from 10 to 200 euros are sold on the shop page."),
    ("Why was I charged twice?", "A pending hold disappears from your statement in days."),
    ("How do I track my order?", "The dispatch e-mail has a link showing where it is now."),
    ("Do prices include tax?", "All amounts shown already contain VAT for your country."),
]


def jsonl(rows: list[dict]) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()


def upload(bot, rows, filename="manual.jsonl", *, tune=True):
    """Sync as the worker does, then (tune) run the tuning task the sync queued."""
    source = services.source_upload(bot=bot, filename=filename, data=jsonl(rows), sync_now=True)
    if tune:
        tasks.retrieval_profile_refresh(bot.pk)
    return source


def plain_articles() -> list[dict]:
    return [
        {"id": f"plain-{i}", "title": title, "body": f"{body} {body}"}
        for i, (title, body) in enumerate(PLAIN)
    ]


def test_a_manual_whose_sections_differ_by_feature_names_chooses_keywords(acme_bot):
    upload(acme_bot, manual_sections())

    profile = RetrievalProfile.objects.get(bot=acme_bot)

    assert profile.choice["keyword_share"] > 0, profile.metrics
    assert profile.metrics["questions"] >= 20
    chosen = next(c for c in profile.metrics["candidates"] if c["chosen"])
    dense = next(
        c
        for c in profile.metrics["candidates"]
        if c["keyword_share"] == 0 and c["scoring"] == "title" and c["adapter"]
    )
    assert chosen["mrr"] > dense["mrr"]
    # ...and the bot now answers a feature question by its name, by default.
    hit = search_documents(bot=acme_bot, query=f"how do I switch {FEATURES[16]} off", k=1)[0]
    assert hit.title == f"Setting up the {FEATURES[16]} module"
    assert hit.keyword > 0


def test_articles_whose_questions_share_no_words_with_them_stay_dense(acme_bot):
    upload(acme_bot, plain_articles(), filename="help.jsonl")

    profile = RetrievalProfile.objects.get(bot=acme_bot)

    assert profile.choice["keyword_share"] == 0, profile.metrics
    assert "beat dense" in profile.metrics["reason"] or "passage" in profile.metrics["reason"]


def test_bm25_finds_the_feature_names_that_dense_misses(acme_bot):
    upload(acme_bot, manual_sections(), tune=False)

    def found(share):
        return sum(
            search_documents(bot=acme_bot, query=f"what does {name} do", k=1, keyword_weight=share)[
                0
            ].title
            == f"Setting up the {name} module"
            for name in FEATURES
        )

    assert found(1.0) == len(FEATURES)
    assert found(0.0) < len(FEATURES)  # model numbers blur together in embeddings (20 of 24)
    hit = search_documents(
        bot=acme_bot, query=f"what does {FEATURES[7]} do", k=2, keyword_weight=1.0
    )
    assert hit[0].keyword > 2 * hit[1].keyword  # the number, not the shared "KX"


def test_a_bot_never_finds_another_bots_chunks_by_keyword(acme_bot, globex_bot):
    upload(acme_bot, manual_sections(FEATURES[:12]))
    upload(globex_bot, manual_sections(FEATURES[12:]))

    for share in (0.0, 0.5, 1.0):
        hits = search_documents(bot=acme_bot, query=FEATURES[16], k=20, keyword_weight=share)
        assert hits, share
        assert all(h.title != f"Setting up the {FEATURES[16]} module" for h in hits)
        assert {h.document_id for h in hits} <= set(acme_bot.documents.values_list("id", flat=True))
    assert search_documents(bot=globex_bot, query=FEATURES[16], k=1, keyword_weight=1.0)[0].keyword


def test_a_resync_rebuilds_the_index_and_a_removed_document_is_never_returned(acme_bot):
    source = upload(acme_bot, manual_sections())
    before = RetrievalProfile.objects.get(bot=acme_bot).checksum

    kept = [s for s in manual_sections() if FEATURES[16] not in s["title"]]
    # The sync itself rebuilds the index; only the choice waits for the worker.
    services.source_upload(
        bot=acme_bot, source=source, filename="manual.jsonl", data=jsonl(kept), sync_now=True
    )

    profile = RetrievalProfile.objects.get(bot=acme_bot)
    assert profile.checksum != before
    assert profile.metrics["pending"]
    assert profile.choice["keyword_share"] > 0  # the last choice stands meanwhile
    _setting, index = profile_load(acme_bot)
    assert index.document_frequency(FEATURES[16].split("-")[1]) == 0
    for share in (0.0, 0.5, 1.0):
        hits = search_documents(bot=acme_bot, query=FEATURES[16], k=30, keyword_weight=share)
        assert all(FEATURES[16] not in h.title for h in hits)


def test_keyword_search_keeps_to_the_filters(acme_bot):
    sections = manual_sections()
    for i, section in enumerate(sections):
        section["category"] = "audio" if i % 2 else "display"
    upload(acme_bot, sections)

    hits = search_documents(
        bot=acme_bot, query=FEATURES[1], k=5, keyword_weight=1.0, filters={"category": "display"}
    )

    assert hits
    assert all(h.title != f"Setting up the {FEATURES[1]} module" for h in hits)  # an audio section
    found = search_documents(
        bot=acme_bot, query=FEATURES[1], k=1, keyword_weight=1.0, filters={"category": "audio"}
    )
    assert found[0].title == f"Setting up the {FEATURES[1]} module"


def test_the_gate_scale_is_the_same_whatever_the_order(acme_bot):
    upload(acme_bot, manual_sections())

    dense = search_documents(
        bot=acme_bot, query=f"Setting up the {FEATURES[10]} module", k=24, keyword_weight=0.0
    )
    fused = search_documents(
        bot=acme_bot, query=f"Setting up the {FEATURES[10]} module", k=24, keyword_weight=1.0
    )

    scores = {h.chunk_id: h.score for h in dense}
    for hit in fused:
        if hit.chunk_id in scores:
            assert hit.score == pytest.approx(scores[hit.chunk_id])


def test_the_knowledge_page_shows_the_choice_and_every_candidate_to_members_only(
    client, agent, outsider, acme_bot
):
    upload(acme_bot, manual_sections())
    profile = RetrievalProfile.objects.get(bot=acme_bot)
    url = reverse("bot_knowledge", args=[acme_bot.organization.slug, acme_bot.slug])

    client.force_login(outsider)
    assert client.get(url).status_code == 404
    client.force_login(agent)
    page = client.get(url).content.decode()

    assert "<h3>Retrieval</h3>" in page
    assert f"<strong>{profile.choice['label']}</strong>" in page
    assert f"from {profile.metrics['questions']} questions" in page
    assert page.count('aria-current="true"') == 1
    assert len(profile.metrics["candidates"]) == 12  # 6 keyword shares x 2 scorings


def test_a_sync_queues_the_tuning_and_the_worker_makes_the_choice(
    acme_bot, q_sync, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        upload(acme_bot, manual_sections(), tune=False)

    profile = RetrievalProfile.objects.get(bot=acme_bot)
    assert not profile.metrics.get("pending")
    assert profile.metrics["questions"] >= 20
