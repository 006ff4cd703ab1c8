"""The HTTP chat API: the bot's secret key, the answer as Server-Sent Events, and the
conversation, escalation and feedback endpoints, each scoped to the key's bot."""

from __future__ import annotations

import json
import time

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import connections
from django.test import AsyncClient

from chat.tests import fixtures_rt
from chat.tests.fixtures_rt import SHIPPING
from conversations import services
from conversations.models import Conversation, Customer, Message
from conversations.tests.factories import ConversationFactory, MessageFactory

scripted = fixtures_rt.scripted
fresh_rate_limits = fixtures_rt.fresh_rate_limits

pytestmark = [
    # The answer is written by a worker thread, which sees committed rows only.
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fresh_rate_limits"),
]


def _auth(bot) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {bot.secret_key}"}


@pytest.fixture
def api(client, acme_bot):
    """A client calling with Acme's bot key."""
    client.defaults.update(_auth(acme_bot))
    return client


def _events(body: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in body.decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


async def _chat(async_client, bot, body):
    response = await async_client.post(
        "/api/v1/chat",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {bot.secret_key}"},
    )
    try:
        if not response.streaming:
            return response, None
        assert response["Content-Type"] == "text/event-stream"
        content = b"".join([chunk async for chunk in response.streaming_content])
        return response, _events(content)
    finally:
        # The test client leaves the view's database connection open (a server closes it at
        # the end of the request); it would outlive the test database.
        await sync_to_async(connections.close_all)()


@database_sync_to_async
def _stored(conversation_id) -> list[tuple[str, str, str]]:
    return list(
        Message.objects.filter(conversation_id=conversation_id)
        .order_by("id")
        .values_list("sender", "state", "text")
    )


# --- POST /api/v1/chat -------------------------------------------------------------------------
async def test_it_streams_the_answer_as_server_sent_events(async_client, acme_bot, scripted):
    response, events = await _chat(
        async_client,
        acme_bot,
        {"message": "How long does shipping take?", "customer": {"visitor_id": "shop-user-1"}},
    )
    assert response.status_code == 200
    names = [name for name, _ in events]
    assert names[-2:] == ["cited_sources", "done"]
    assert "".join(data["text"] for name, data in events if name == "token") == SHIPPING
    done = events[-1][1]
    assert done["text"] == SHIPPING and done["outcome"] == "answered"
    assert await _stored(done["conversation_id"]) == [
        ("user", "complete", "How long does shipping take?"),
        ("ai", "complete", SHIPPING),
    ]
    conversation = await database_sync_to_async(
        Conversation.objects.select_related("customer").get
    )(pk=done["conversation_id"])
    assert conversation.channel == "api" and conversation.bot_id == acme_bot.pk
    assert conversation.customer.visitor_id == "shop-user-1"


async def test_it_continues_a_conversation(async_client, acme_bot, scripted):
    _response, first = await _chat(async_client, acme_bot, {"message": "Hi"})
    conversation_id = first[-1][1]["conversation_id"]
    _response, second = await _chat(
        async_client,
        acme_bot,
        {"conversation_id": conversation_id, "message": "And returns?"},
    )
    assert second[-1][1]["conversation_id"] == conversation_id
    assert len(await _stored(conversation_id)) == 4
    assert scripted.turns[1].history == [("user", "Hi"), ("ai", SHIPPING)]


async def test_a_user_id_is_trusted_as_a_verified_customer(async_client, acme_bot, scripted):
    body = {"message": "Hi", "customer": {"user_id": "user-42", "name": "Vera"}}
    _response, events = await _chat(async_client, acme_bot, body)
    customer = await database_sync_to_async(Customer.objects.get)(
        conversations__pk=events[-1][1]["conversation_id"]
    )
    assert customer.external_id == "user-42" and customer.verified and customer.name == "Vera"


async def test_a_retried_request_is_stored_and_answered_once(async_client, acme_bot, scripted):
    _response, first = await _chat(async_client, acme_bot, {"message": "Hi"})
    body = {
        "conversation_id": first[-1][1]["conversation_id"],
        "message": "Shipping?",
        "client_message_id": "req-1",
    }
    _response, once = await _chat(async_client, acme_bot, body)
    _response, again = await _chat(async_client, acme_bot, body)
    assert again == [("done", once[-1][1])]
    assert len(scripted.turns) == 2
    assert len(await _stored(body["conversation_id"])) == 4


async def test_a_handed_off_conversation_gets_no_bot_answer(
    async_client, acme_bot, carlas_chat, scripted
):
    await database_sync_to_async(services.conversation_handoff)(
        conversation=carlas_chat, reason="Asked for a person"
    )
    _response, events = await _chat(
        async_client,
        acme_bot,
        {"conversation_id": carlas_chat.pk, "message": "Hello?"},
    )
    assert events == [
        (
            "done",
            {"conversation_id": carlas_chat.pk, "message_id": None, "outcome": "", "text": ""},
        )
    ]
    assert scripted.turns == []


async def test_a_failed_turn_is_escalated_in_the_stream(async_client, acme_bot, scripted):
    scripted.error = RuntimeError("boom")
    _response, events = await _chat(async_client, acme_bot, {"message": "Hi"})
    names = [name for name, _ in events]
    assert names[-2:] == ["escalation_confirmed", "done"]


@pytest.mark.parametrize(
    "header",
    [None, "Bearer sk_wrong", "Basic abc", "Bearer "],
    ids=["none", "wrong-key", "not-bearer", "empty"],
)
def test_it_needs_the_bots_secret_key(client, acme_bot, header):
    headers = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.post(
        "/api/v1/chat", {"message": "Hi"}, content_type="application/json", **headers
    )
    assert response.status_code == 401
    assert "Bearer" in response.json()["error"]


def test_the_public_key_is_not_an_api_key(client, acme_bot):
    response = client.post(
        "/api/v1/chat",
        {"message": "Hi"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {acme_bot.public_key}",
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        ("{not json", 400, "bad_request", "not valid JSON"),
        ("[1]", 400, "bad_request", "JSON object"),
        ("{}", 400, "bad_request", '"message" is required'),
        ('{"message": "   "}', 400, "empty", "empty"),
        ('{"message": "", "customer": {"visitor_id": "shop-visitor-1"}}', 400, "empty", "empty"),
        ('{"message": "' + "a" * 20_000 + '"}', 413, "too_long", "20000 characters"),
        ('{"message": "Hi", "conversation_id": "7"}', 400, "bad_request", "whole number"),
        ('{"message": "Hi", "customer": "me"}', 400, "bad_request", '"customer"'),
        ('{"message": "Hi", "customer": {"visitor_id": "x"}}', 400, "identity", "visitor id"),
        ("[" * 20_000, 400, "bad_request", "not valid JSON"),
        ('{"message": "Hi", "customer": ' + "[" * 40 + "]" * 40 + "}", 400, "bad_request", "JSON"),
    ],
    ids=[
        "bad-json",
        "not-object",
        "no-message",
        "blank",
        "empty-named-customer",
        "too-long",
        "bad-id",
        "bad-customer",
        "bad-visitor",
        "nested-20000-deep",
        "nested-40-deep",
    ],
)
def test_bad_requests_get_a_json_error_that_says_why(api, body, status, code, says):
    response = api.post("/api/v1/chat", body, content_type="application/json")
    assert response.status_code == status
    assert response.json()["code"] == code
    assert says in response.json()["error"]
    # Nothing is stored for a refused first message: no customer, no empty conversation.
    assert not Message.objects.exists()
    assert not Conversation.objects.exists()
    assert not Customer.objects.exists()


async def test_a_retried_first_message_starts_one_conversation(async_client, acme_bot, scripted):
    body = {
        "message": "Hi",
        "client_message_id": "req-1",
        "customer": {"visitor_id": "shop-visitor-1"},
    }
    _response, once = await _chat(async_client, acme_bot, body)
    _response, again = await _chat(async_client, acme_bot, body)
    assert again == [("done", once[-1][1])]
    assert await Conversation.objects.acount() == 1
    assert await Message.objects.filter(sender=Message.Sender.USER).acount() == 1


def test_a_conversation_of_another_bot_is_not_found(api, gus):
    theirs = ConversationFactory(customer=gus)
    for conversation_id in (theirs.pk, 999_999):
        response = api.post(
            "/api/v1/chat",
            {"conversation_id": conversation_id, "message": "Hi"},
            content_type="application/json",
        )
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert not Message.objects.exists()


async def test_too_many_messages_get_429_with_retry_after(
    async_client, acme_bot, settings, scripted
):
    settings.CHAT_RATE_PER_VISITOR = 1
    body = {"message": "Hi", "customer": {"visitor_id": "shop-user-1"}}
    first, _events = await _chat(async_client, acme_bot, body)
    assert first.status_code == 200
    response, _events = await _chat(async_client, acme_bot, body)
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert f"wait {response['Retry-After']} seconds" in response.json()["error"]


async def test_it_is_csrf_exempt(acme_bot, scripted):
    strict = AsyncClient(enforce_csrf_checks=True)
    response, events = await _chat(strict, acme_bot, {"message": "Hi"})
    assert response.status_code == 200 and events[-1][0] == "done"


# --- The other endpoints ----------------------------------------------------------------------
def test_it_returns_a_conversation_with_its_messages(api, carlas_chat):
    asked = MessageFactory(conversation=carlas_chat, text="Hi")
    answered = MessageFactory(conversation=carlas_chat, sender="ai", text="Hello!")
    response = api.get(f"/api/v1/conversations/{carlas_chat.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["conversation"]["id"] == carlas_chat.pk
    assert [m["id"] for m in body["messages"]] == [asked.pk, answered.pk]
    assert "trace" not in body["messages"][0]
    later = api.get(f"/api/v1/conversations/{carlas_chat.pk}?after_id={asked.pk}")
    assert [m["id"] for m in later.json()["messages"]] == [answered.pk]


def test_bot_a_cannot_read_bot_bs_conversation(api, globex_bot, gus):
    theirs = ConversationFactory(customer=gus)
    response = api.get(f"/api/v1/conversations/{theirs.pk}")
    assert response.status_code == 404
    assert api.get(f"/api/v1/conversations/{theirs.pk}", **_auth(globex_bot)).status_code == 200


def test_escalate_hands_off(api, carlas_chat):
    response = api.post(
        "/api/v1/escalate",
        {"conversation_id": carlas_chat.pk, "reason": "VIP customer"},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["conversation"]["status"] == "waiting"
    carlas_chat.refresh_from_db()
    assert carlas_chat.handoff_reason == "VIP customer"


def test_escalate_another_bots_conversation_is_not_found(api, gus):
    theirs = ConversationFactory(customer=gus)
    response = api.post(
        "/api/v1/escalate",
        {"conversation_id": theirs.pk},
        content_type="application/json",
    )
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == Conversation.Status.AI


def test_feedback_on_an_answer_and_a_rating(api, carlas_chat):
    answer = MessageFactory(conversation=carlas_chat, sender="ai", text="Hello!")
    response = api.post(
        "/api/v1/feedback",
        {"message_id": answer.pk, "value": 1},
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["message"]["feedback"] == 1
    services.conversation_set_status(conversation=carlas_chat, status="resolved", resolution="bot")
    response = api.post(
        "/api/v1/feedback",
        {"conversation_id": carlas_chat.pk, "score": 4},
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["conversation"]["csat"] == 4
    bad = api.post(
        "/api/v1/feedback",
        {"conversation_id": carlas_chat.pk, "score": 7},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "1 to 5" in bad.json()["error"]
    empty = api.post("/api/v1/feedback", {}, content_type="application/json")
    assert empty.status_code == 400


def test_feedback_on_another_bots_message_is_not_found(api, gus):
    theirs = MessageFactory(conversation=ConversationFactory(customer=gus), sender="ai")
    response = api.post(
        "/api/v1/feedback",
        {"message_id": theirs.pk, "value": -1},
        content_type="application/json",
    )
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.feedback is None


# --- Under daphne -------------------------------------------------------------------------------
class FileGate:
    """A gate that works across the fork of the live server: open once the file exists."""

    def __init__(self, path):
        self.path = path

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.path.exists():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


@pytest.fixture
def held_after_first_token(scripted, tmp_path):
    """The answer waits after its first token until the returned file exists. A fixture, so
    that it is set before live_asgi_server forks the server with the pipeline in it."""
    opened = tmp_path / "first-token-read"
    scripted.midway = FileGate(opened)
    return opened


def test_daphne_streams_each_token_as_it_is_written(
    held_after_first_token, live_asgi_server, acme_bot
):
    """The real server sends each event as it happens, not the whole answer at the end: the
    answer is held after its first token until the client has read that token."""
    import http.client
    from urllib.parse import urlsplit

    host = urlsplit(live_asgi_server)
    connection = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
    connection.request(
        "POST",
        "/api/v1/chat",
        body=json.dumps({"message": "How long does shipping take?"}),
        headers={
            "Authorization": f"Bearer {acme_bot.secret_key}",
            "Content-Type": "application/json",
        },
    )
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    first = b"".join(response.readline() for _ in range(3))
    assert _events(first) == [("token", {"text": "Standard"})]
    held_after_first_token.touch()
    body = first + response.read()
    connection.close()
    events = _events(body)
    assert "".join(d["text"] for name, d in events if name == "token") == SHIPPING
    assert events[-1][0] == "done"
