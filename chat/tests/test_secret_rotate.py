"""Rotating a bot's secret key on the Integrations page: managers only, the new key shown once,
the old one refused by the API at once."""

import pytest
from django.urls import reverse

from bots import selectors as bot_selectors

pytestmark = pytest.mark.django_db


def _url(bot):
    return reverse("bot_secret_rotate", args=[bot.organization.slug, bot.slug])


def test_a_manager_rotates_the_secret_key(client, admin_member, acme_bot):
    old = acme_bot.secret_key
    client.force_login(admin_member)
    response = client.post(_url(acme_bot), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    acme_bot.refresh_from_db()
    assert acme_bot.secret_key != old and acme_bot.secret_key.startswith("sk_")
    body = response.content.decode()
    assert acme_bot.secret_key in body and old not in body
    assert "The old one no longer works" in body
    assert "no-store" in response["Cache-Control"]
    assert bot_selectors.bot_for_secret_key(secret_key=old) is None
    assert bot_selectors.bot_for_secret_key(secret_key=acme_bot.secret_key) == acme_bot


def test_an_agent_cannot_rotate_the_secret_key(client, agent, acme_bot):
    old = acme_bot.secret_key
    client.force_login(agent)
    assert client.post(_url(acme_bot)).status_code == 403
    acme_bot.refresh_from_db()
    assert acme_bot.secret_key == old


def test_another_organization_cannot_rotate_acmes_key(client, outsider, acme_bot):
    old = acme_bot.secret_key
    client.force_login(outsider)
    assert client.post(_url(acme_bot)).status_code == 404
    assert client.get(_url(acme_bot)).status_code == 405
    acme_bot.refresh_from_db()
    assert acme_bot.secret_key == old
