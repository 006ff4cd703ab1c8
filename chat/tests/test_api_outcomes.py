"""`POST /api/v1/confirm` and the rating on `POST /api/v1/feedback`: Yes, No, bad input, one
rating per conversation, another bot's key, and the request limit."""

from __future__ import annotations

import pytest

from chat.tests import fixtures_rt
from conversations import services
from conversations.models import Conversation

fresh_rate_limits = fixtures_rt.fresh_rate_limits

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_rate_limits")]


def _auth(bot) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {bot.secret_key}"}


@pytest.fixture
def answered(carlas_chat):
    """The bot answered Carla, with a source: (conversation, answer)."""
    question, _ = services.message_add_user(conversation=carlas_chat, text="Shipping?")
    reply = services.message_start_bot(conversation=carlas_chat, reply_to=question)
    source = [{"n": 1, "chunk_id": 1, "document_id": 1, "title": "Shipping", "url": ""}]
    reply = services.message_complete(
        message=reply, text="3 to 5 days.", outcome="answered", citations=source
    )
    return carlas_chat, reply


def _post(client, bot, path, body):
    return client.post(path, body, content_type="application/json", **_auth(bot))


def test_yes_resolves_it_and_then_it_is_rated_once(client, acme_bot, answered):
    conversation, reply = answered
    body = {"conversation_id": conversation.pk, "message_id": reply.pk, "answered": True}
    response = _post(client, acme_bot, "/api/v1/confirm", body)
    assert response.status_code == 200, response.content
    assert response.json()["conversation"]["status"] == "resolved"
    assert response.json()["conversation"]["resolution"] == "bot"

    rating = {"conversation_id": conversation.pk, "score": 4, "comment": "Fine"}
    response = _post(client, acme_bot, "/api/v1/feedback", rating)
    assert response.status_code == 200 and response.json()["conversation"]["csat"] == 4
    again = _post(client, acme_bot, "/api/v1/feedback", {**rating, "score": 1})
    assert again.status_code == 409 and again.json()["code"] == "not_allowed"
    assert "already been rated" in again.json()["error"]
    conversation.refresh_from_db()
    assert (conversation.csat, conversation.csat_comment) == (4, "Fine")
    # The thumbs still work after it.
    thumbs = _post(client, acme_bot, "/api/v1/feedback", {"message_id": reply.pk, "value": 1})
    assert thumbs.status_code == 200 and thumbs.json()["message"]["feedback"] == 1


def test_no_offers_a_person(client, acme_bot, answered):
    conversation, reply = answered
    body = {"conversation_id": conversation.pk, "message_id": reply.pk, "answered": False}
    response = _post(client, acme_bot, "/api/v1/confirm", body)
    assert response.status_code == 200
    assert response.json()["conversation"]["status"] == "awaiting_customer"
    assert conversation.messages.last().extras == {"offer_human": True}


def test_a_rating_before_the_resolution_is_refused(client, acme_bot, answered):
    conversation, _reply = answered
    body = {"conversation_id": conversation.pk, "score": 5}
    response = _post(client, acme_bot, "/api/v1/feedback", body)
    assert response.status_code == 409 and "resolved" in response.json()["error"]


@pytest.mark.parametrize(
    "change",
    [
        {"answered": "yes"},
        {"answered": None},
        {"message_id": "7"},
        {"conversation_id": None},
    ],
)
def test_bad_input_is_a_400(client, acme_bot, answered, change):
    conversation, reply = answered
    body = {"conversation_id": conversation.pk, "message_id": reply.pk, "answered": True}
    response = _post(client, acme_bot, "/api/v1/confirm", {**body, **change})
    assert response.status_code == 400 and response.json()["error"]
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.AWAITING


def test_a_message_that_is_not_the_latest_answer_is_a_409(client, acme_bot, answered):
    conversation, reply = answered
    body = {"conversation_id": conversation.pk, "message_id": reply.reply_to_id, "answered": True}
    response = _post(client, acme_bot, "/api/v1/confirm", body)
    assert response.status_code == 409 and response.json()["code"] == "not_allowed"
    assert "latest answer" in response.json()["error"]


def test_olgas_key_cannot_resolve_or_rate_acmes_conversation(
    client, acme_bot, globex_bot, answered
):
    conversation, reply = answered
    body = {"conversation_id": conversation.pk, "message_id": reply.pk, "answered": True}
    assert _post(client, globex_bot, "/api/v1/confirm", body).status_code == 404
    services.conversation_set_status(
        conversation=conversation, status="resolved", resolution="agent"
    )
    rating = {"conversation_id": conversation.pk, "score": 1, "comment": "Olga was here"}
    assert _post(client, globex_bot, "/api/v1/feedback", rating).status_code == 404
    conversation.refresh_from_db()
    assert (conversation.csat, conversation.csat_comment) == (None, "")
    reply.refresh_from_db()
    assert reply.confirmed is None


def test_no_key_is_a_401(client, answered):
    conversation, reply = answered
    body = {"conversation_id": conversation.pk, "message_id": reply.pk, "answered": True}
    response = client.post("/api/v1/confirm", body, content_type="application/json")
    assert response.status_code == 401


def test_confirm_and_rating_count_against_the_request_limit(client, acme_bot, answered, settings):
    settings.CHAT_RATE_PER_VISITOR = 2
    conversation, reply = answered
    wrong = {"conversation_id": conversation.pk, "message_id": 999999, "answered": True}
    for _ in range(2):
        assert _post(client, acme_bot, "/api/v1/confirm", wrong).status_code == 409
    body = {**wrong, "message_id": reply.pk}
    limited = _post(client, acme_bot, "/api/v1/confirm", body)
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert int(limited["Retry-After"]) >= 1
    rating = {"conversation_id": conversation.pk, "score": 5}
    assert _post(client, acme_bot, "/api/v1/feedback", rating).status_code == 429
