"""Personas of the chat, on top of the root ones: Carla chats with Acme's bot (`carlas_chat`),
Dan is another Acme customer, Vera is a verified Acme customer (signed user id), and Gus chats
with Globex's bot."""

import pytest

from conversations.tests.factories import ConversationFactory, CustomerFactory


@pytest.fixture
def carla(acme_bot):
    return CustomerFactory(bot=acme_bot, name="Carla", visitor_id="carla-browser-1")


@pytest.fixture
def carlas_chat(carla):
    return ConversationFactory(customer=carla)


@pytest.fixture
def dan(acme_bot):
    return CustomerFactory(bot=acme_bot, name="Dan", visitor_id="dan-browser-1")


@pytest.fixture
def vera(acme_bot):
    return CustomerFactory(
        bot=acme_bot, name="Vera", visitor_id="vera-laptop-1", external_id="user-42"
    )


@pytest.fixture
def gus(globex_bot):
    return CustomerFactory(bot=globex_bot, name="Gus", visitor_id="gus-browser-1")


@pytest.fixture
def broadcasts(monkeypatch):
    """Every event sent through config.realtime.broadcast, as (group, event, payload)."""
    sent = []
    monkeypatch.setattr(
        "config.realtime.broadcast",
        lambda group, event, **payload: sent.append((group, event, payload)),
    )
    return sent
