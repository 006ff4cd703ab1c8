"""The console's pages and actions: any member of the organization may use them; anyone else
gets a 404 (never a hint the conversation exists), and the anonymous are sent to sign in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from bots.models import Membership
from conversations import services
from conversations.models import Conversation, Message
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory
from escalation.models import EscalationLog
from escalation.services import escalation_open

pytestmark = pytest.mark.django_db

Status = Conversation.Status
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def waiting(carlas_chat):
    MessageFactory(conversation=carlas_chat, text="My order never came")
    escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked for a person")
    carlas_chat.refresh_from_db()
    return carlas_chat


def _url(name, conversation=None, org="acme"):
    args = [org] if conversation is None else [org, conversation.pk]
    return reverse(name, args=args)


ACTIONS = [
    "console_claim",
    "console_take_over",
    "console_transfer",
    "console_resolve",
    "console_return",
    "console_reply",
    "console_note",
    "console_seen",
]


def test_it_shows_the_queue_to_an_agent(client, agent, waiting):
    client.force_login(agent)
    response = client.get(_url("console"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="queue"' in html and "Carla" in html
    assert "1 unread" in html and "Medium" in html and "Tier 1" in html
    assert 'ws-connect="/ws/o/acme/console/"' in html
    assert 'hx-trigger="every 30s, console-resync from:body"' in html


@pytest.mark.parametrize("persona", ["owner", "admin_member", "agent"])
def test_every_member_role_may_use_the_console(client, persona, request, waiting):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(_url("console_conversation", waiting)).status_code == 200


def test_the_queue_orders_by_priority_then_waiting_time(client, agent, acme_bot):
    now = timezone.now()
    rows = [("low", 50), ("urgent", 1), ("medium", 30), ("urgent", 20), ("high", 5)]
    for i, (priority, minutes) in enumerate(rows):
        ConversationFactory(
            customer=CustomerFactory(bot=acme_bot, name=f"C{i}"),
            status=Status.WAITING,
            priority=priority,
            handoff_at=now - timedelta(minutes=minutes),
        )
    client.force_login(agent)
    html = client.get(_url("console"), HTTP_HX_TARGET="queue", **HTMX).content.decode()
    order = [html.index(f">C{i}</a>") for i in (3, 1, 4, 2, 0)]
    assert order == sorted(order)
    assert html.lstrip().startswith('<section id="queue"')


def test_the_queue_partial_takes_a_fixed_number_of_queries(
    client, agent, acme_bot, django_assert_num_queries
):
    for i in range(6):
        conversation = ConversationFactory(
            customer=CustomerFactory(bot=acme_bot, name=f"C{i}"), status=Status.WAITING
        )
        MessageFactory.create_batch(2, conversation=conversation)
    client.force_login(agent)
    client.get(_url("console"), HTTP_HX_TARGET="queue", **HTMX)  # warm the session
    # Session, user, membership; then the queue (unread counts and waiting time included).
    with django_assert_num_queries(4):
        response = client.get(_url("console"), HTTP_HX_TARGET="queue", **HTMX)
    assert response.content.decode().count('class="queue-item') == 6


def test_the_whole_console_page_takes_a_fixed_number_of_queries(
    client, agent, acme_bot, django_assert_num_queries
):
    for _i in range(4):
        ConversationFactory(customer=CustomerFactory(bot=acme_bot), status=Status.WAITING)
        ConversationFactory(
            customer=CustomerFactory(bot=acme_bot), status=Status.ACTIVE, assigned_agent=agent
        )
        ConversationFactory(customer=CustomerFactory(bot=acme_bot), last_message_at=timezone.now())
    client.force_login(agent)
    client.get(_url("console"))
    with django_assert_num_queries(6):  # session, user, membership, queue, mine, with the bot
        client.get(_url("console"))


def test_playground_conversations_are_marked_as_tests(client, agent, carla):
    ConversationFactory(customer=carla, status=Status.WAITING, channel="playground")
    client.force_login(agent)
    html = client.get(_url("console")).content.decode()
    assert 'class="badge test"' in html


def test_the_pane_shows_the_transcript_notes_and_the_package(client, agent, waiting):
    EscalationLog.objects.filter(conversation=waiting).update(
        package={
            "summary": "Carla's order 1234 never arrived.",
            "trajectory": [{"message_id": 1, "compound": -0.4, "level": "frustrated"}],
            "retrieved": [{"title": "Shipping", "url": "https://acme.example/s", "score": 0.8}],
            "drafted": "Standard shipping takes 3 to 5 days.",
            "suggested_action": "Check the parcel's tracking.",
        }
    )
    Message.objects.create(
        conversation=waiting, sender="agent", agent=agent, internal=True, text="VIP customer"
    )
    client.force_login(agent)
    response = client.get(_url("console_conversation", waiting), HTTP_HX_TARGET="pane", **HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="pane"')
    for text in (
        "Carla&#x27;s order 1234 never arrived.",
        "frustrated",
        'href="https://acme.example/s"',
        "Standard shipping takes 3 to 5 days.",
        "Check the parcel&#x27;s tracking.",
        "My order never came",
        "Connecting you with a person…",
    ):
        assert text in html, text
    assert 'class="msg agent complete internal"' in html and "VIP customer" in html
    assert ">Claim</button>" in html


def test_without_a_package_the_pane_falls_back_to_the_reason_and_the_bots_last_answer(
    client, agent, carlas_chat
):
    question = MessageFactory(conversation=carlas_chat, text="Refund?")
    Message.objects.create(
        conversation=carlas_chat,
        sender="ai",
        reply_to=question,
        text="Refunds take 5 days.",
        trace={"retrieved": [{"chunk_id": 999, "score": 0.5}, "junk"]},
    )
    escalation_open(conversation=carlas_chat, trigger="keywords", reason="Mentioned refund")
    client.force_login(agent)
    html = client.get(_url("console_conversation", carlas_chat)).content.decode()
    assert "Mentioned refund" in html and "Refunds take 5 days." in html


def test_it_opens_a_conversation_with_the_bot_and_shows_what_the_bot_used_and_wrote(
    client, agent, carlas_chat
):
    # No escalation, so no package: all of it comes from the bot's last answer.
    question = MessageFactory(conversation=carlas_chat, text="How long is the warranty?")
    Message.objects.create(
        conversation=carlas_chat,
        sender="ai",
        reply_to=question,
        text="Acme products come with a two-year warranty.",
        citations=[{"chunk_id": 7, "title": "Warranty", "url": "https://acme.example/w"}],
    )
    client.force_login(agent)
    for headers in ({}, {"HTTP_HX_TARGET": "pane", **HTMX}):
        response = client.get(_url("console_conversation", carlas_chat), **headers)
        assert response.status_code == 200
        html = response.content.decode()
        assert "The bot retrieved" in html and 'href="https://acme.example/w"' in html
        assert "The bot drafted" in html and "two-year warranty." in html
        assert ">Take over</button>" in html


def test_it_opens_a_handoff_after_a_greeting_and_shows_the_bots_greeting_as_its_draft(
    client, agent, carlas_chat
):
    # The greeting's answer retrieved nothing: the package's "retrieved" is empty, and the
    # pane looks for it in the bot's last answer.
    hello = MessageFactory(conversation=carlas_chat, text="hello")
    Message.objects.create(
        conversation=carlas_chat,
        sender="ai",
        reply_to=hello,
        text="Hi! I'm Acme's assistant.",
        trace={"intent": "greeting"},
    )
    MessageFactory(conversation=carlas_chat, text="talk to a human")
    escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked for a person")
    assert EscalationLog.objects.get(conversation=carlas_chat).package["retrieved"] == []
    client.force_login(agent)
    response = client.get(_url("console_conversation", carlas_chat))
    assert response.status_code == 200
    html = response.content.decode()
    assert "The bot drafted" in html and "Hi! I&#x27;m Acme&#x27;s assistant." in html
    assert "The bot retrieved" not in html  # nothing to list, and no empty heading
    assert ">Claim</button>" in html


def test_an_agent_claims_and_the_pane_says_so(client, agent, waiting):
    client.force_login(agent)
    response = client.post(_url("console_claim", waiting), **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "With an agent: Sam" in html and "Sam joined the chat" in html
    assert f'id="reply-{waiting.pk}"' in html


def test_the_agent_who_lost_the_claim_is_told_inline(client, agent, admin_member, waiting):
    from escalation.services import conversation_claim

    conversation_claim(conversation=waiting, agent=admin_member)
    client.force_login(agent)
    response = client.post(_url("console_claim", waiting), **HTMX)
    assert response.status_code == 409
    assert "Ian already took this conversation." in response.content.decode()


def test_a_claim_past_capacity_is_refused_inline(client, agent, waiting, carla):
    Membership.objects.filter(user=agent).update(capacity=0)
    client.force_login(agent)
    response = client.post(_url("console_claim", waiting), **HTMX)
    assert response.status_code == 409
    assert "limit of 0" in response.content.decode()


def test_an_agent_takes_over_from_the_bot_replies_and_returns_it(client, agent, carlas_chat):
    client.force_login(agent)
    assert client.post(_url("console_take_over", carlas_chat)).status_code == 200
    response = client.post(_url("console_reply", carlas_chat), {"text": "Hello Carla"})
    assert response.status_code == 200 and "Hello Carla" in response.content.decode()
    assert client.post(_url("console_return", carlas_chat)).status_code == 200
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Status.AI
    assert (
        "You&#x27;re back with the assistant."
        in client.get(_url("console_conversation", carlas_chat)).content.decode()
    )


def test_an_empty_reply_is_refused_and_nothing_is_stored(client, agent, waiting):
    client.force_login(agent)
    client.post(_url("console_claim", waiting))
    response = client.post(_url("console_reply", waiting), {"text": "   "})
    assert response.status_code == 400 and "empty" in response.content.decode()
    assert not waiting.messages.filter(sender="agent").exists()


def test_a_note_is_added_and_kept_from_the_customer(client, agent, waiting):
    client.force_login(agent)
    response = client.post(_url("console_note", waiting), {"text": "Call back tomorrow"})
    assert response.status_code == 200 and "Call back tomorrow" in response.content.decode()
    assert waiting.messages.get(text="Call back tomorrow").internal


def test_it_transfers_to_a_queue_and_to_a_colleague(client, agent, admin_member, waiting):
    client.force_login(agent)
    client.post(_url("console_transfer", waiting), {"to": "queue:manager"})
    waiting.refresh_from_db()
    assert (waiting.status, waiting.queue) == (Status.WAITING, "manager")
    client.post(_url("console_transfer", waiting), {"to": f"agent:{admin_member.pk}"})
    waiting.refresh_from_db()
    assert waiting.assigned_agent == admin_member


def _transfer_menu(html: str) -> str:
    return html[html.index('<select name="to"') : html.index("</select>")]


def test_the_transfer_menu_never_defaults_to_the_queue_the_chat_waits_in(client, agent, waiting):
    Conversation.objects.filter(pk=waiting.pk).update(queue="tier2")
    client.force_login(agent)
    html = client.get(_url("console_conversation", waiting)).content.decode()
    assert '<span class="badge">Tier 2</span>' in html
    menu = _transfer_menu(html)
    # Nothing chosen until the agent chooses: a hurried click sends nothing anywhere.
    assert "required" in menu.split(">")[0]
    assert '<option value="" disabled selected>Transfer to…</option>' in menu
    assert menu.count("selected") == 1
    assert '<option value="queue:tier2" disabled>Tier 2 (waiting here)</option>' in menu
    assert '<option value="queue:tier1">Tier 1</option>' in menu
    assert '<option value="queue:manager">Manager</option>' in menu


def test_an_agent_may_put_their_chat_back_in_its_own_queue(client, agent, waiting):
    Conversation.objects.filter(pk=waiting.pk).update(queue="tier2")
    client.force_login(agent)
    html = client.post(_url("console_claim", waiting)).content.decode()
    assert '<option value="queue:tier2">Tier 2 (its queue)</option>' in _transfer_menu(html)
    client.post(_url("console_transfer", waiting), {"to": "queue:tier2"})
    waiting.refresh_from_db()
    assert (waiting.status, waiting.queue, waiting.assigned_agent) == ("waiting", "tier2", None)


@pytest.mark.parametrize(
    "to",
    ["", "queue:vip", "queue:tier1", "agent:abc", "agent:999999", "agent:" + "9" * 30, "moon:1"],
)
def test_a_transfer_to_nowhere_is_refused(client, agent, waiting, to):
    client.force_login(agent)
    response = client.post(_url("console_transfer", waiting), {"to": to})
    assert response.status_code in (400, 409)
    waiting.refresh_from_db()
    assert (waiting.status, waiting.queue) == (Status.WAITING, "tier1")


def test_a_transfer_to_another_organizations_member_is_refused(client, agent, outsider, waiting):
    client.force_login(agent)
    response = client.post(_url("console_transfer", waiting), {"to": f"agent:{outsider.pk}"})
    assert response.status_code == 400
    waiting.refresh_from_db()
    assert waiting.assigned_agent is None


def test_it_resolves(client, agent, waiting):
    client.force_login(agent)
    assert client.post(_url("console_resolve", waiting)).status_code == 200
    waiting.refresh_from_db()
    assert waiting.status == Status.RESOLVED


def test_opening_marks_the_conversation_seen(client, agent, waiting):
    client.force_login(agent)
    assert client.post(_url("console_seen", waiting), **HTMX).status_code == 200
    waiting.refresh_from_db()
    assert waiting.agent_seen_message_id == waiting.messages.order_by("-id").first().pk


def test_the_availability_toggle(client, agent):
    client.force_login(agent)
    response = client.post(_url("console_availability"), {"availability": "away"}, **HTMX)
    assert response.status_code == 200 and 'aria-pressed="true">Away' in response.content.decode()
    assert Membership.objects.get(user=agent).availability == "away"
    response = client.post(_url("console_availability"), {"availability": "asleep"})
    assert response.status_code == 400
    assert Membership.objects.get(user=agent).availability == "away"


# --- Other organizations and the anonymous --------------------------------------------------
@pytest.mark.parametrize("name", ["console_conversation", *ACTIONS])
def test_another_organizations_owner_gets_404_and_changes_nothing(client, outsider, waiting, name):
    client.force_login(outsider)
    method = client.get if name == "console_conversation" else client.post
    response = method(_url(name, waiting), {"text": "hi", "to": "queue:tier2"})
    assert response.status_code == 404
    waiting.refresh_from_db()
    assert (waiting.status, waiting.queue, waiting.assigned_agent) == ("waiting", "tier1", None)
    assert not waiting.messages.filter(sender="agent").exists()


def test_another_organizations_console_never_lists_acmes_conversations(
    client, outsider, waiting, gus
):
    ConversationFactory(customer=gus, status=Status.WAITING)
    client.force_login(outsider)
    html = client.get(_url("console", org="globex")).content.decode()
    assert "Gus" in html and "Carla" not in html
    assert client.get(_url("console", org="acme")).status_code == 404
    # Globex's console with Acme's conversation id: still a 404.
    assert client.get(_url("console_conversation", waiting, org="globex")).status_code == 404


@pytest.mark.parametrize("name", ["console", "console_conversation", *ACTIONS])
def test_the_anonymous_are_sent_to_sign_in(client, waiting, name):
    url = _url(name) if name == "console" else _url(name, waiting)
    response = (client.get if name in ("console", "console_conversation") else client.post)(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_actions_take_post_only(client, agent, waiting):
    client.force_login(agent)
    assert client.get(_url("console_claim", waiting)).status_code == 405
    assert client.post(_url("console")).status_code == 405


def test_an_unknown_conversation_is_404(client, agent, acme):
    client.force_login(agent)
    assert client.get(reverse("console_conversation", args=["acme", 987654])).status_code == 404


def test_the_navigation_links_the_console(client, agent, acme):
    client.force_login(agent)
    html = client.get(reverse("organization_detail", args=["acme"])).content.decode()
    assert f'href="{_url("console")}"' in html


def test_a_package_of_unexpected_shape_is_shown_as_text_not_misread(client, agent, waiting):
    EscalationLog.objects.filter(conversation=waiting).update(
        package={"summary": ["not", "text"], "trajectory": "up", "tone_hint": "Be brief"}
    )
    client.force_login(agent)
    response = client.get(_url("console_conversation", waiting))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Tone hint" in html and "Be brief" in html
    assert "Trajectory" in html and "Asked for a person" in html  # the reason still shows


def test_each_list_refreshes_alone(client, agent, carla, dan):
    ConversationFactory(customer=carla, status=Status.ACTIVE, assigned_agent=agent)
    ConversationFactory(customer=dan, last_message_at=timezone.now())
    client.force_login(agent)
    mine = client.get(_url("console"), HTTP_HX_TARGET="mine", **HTMX).content.decode()
    assert mine.lstrip().startswith('<section id="mine"') and "Carla" in mine
    bot = client.get(_url("console"), HTTP_HX_TARGET="with-bot", **HTMX).content.decode()
    assert bot.lstrip().startswith('<section id="with-bot"') and "Dan" in bot
    assert "Carla" not in bot
    presence = client.get(_url("console"), HTTP_HX_TARGET="availability", **HTMX)
    assert presence.content.decode().lstrip().startswith('<div id="availability"')


def test_the_with_the_bot_list_leaves_out_conversations_nobody_wrote_in(client, agent, carla, dan):
    ConversationFactory(customer=carla)  # as an older widget's hello left one
    chat = ConversationFactory(customer=dan)
    services.message_add_user(conversation=chat, text="Do you ship to Norway?")
    client.force_login(agent)
    bot = client.get(_url("console"), HTTP_HX_TARGET="with-bot", **HTMX).content.decode()
    assert "Dan" in bot and "Carla" not in bot
