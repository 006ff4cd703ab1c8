"""What every page shares: the icon browsers ask for, and the sign-in wording of every page
around signing in (the app's own, and allauth's inside our layout)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_it_answers_the_browsers_favicon_request_with_an_image(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert b"<svg" in b"".join(response.streaming_content)
    assert "max-age" in response["Cache-Control"]


def test_the_icon_is_linked_from_the_app_the_sign_in_pages_and_the_chat_page(client, acme_bot):
    link = '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
    for url in (
        reverse("account_login"),
        reverse("account_signup"),
        reverse("chat_page", args=[acme_bot.public_key]),
        reverse("widget_frame", args=[acme_bot.public_key]),
    ):
        assert link in client.get(url).content.decode(), url
    assert client.get("/static/favicon.svg").status_code == 200


def _sign_in_pages(client, owner, settings):
    # Google's confirmation page, as it shows once the operator has set a client id.
    settings.SOCIALACCOUNT_PROVIDERS = {
        "google": {"APPS": [{"client_id": "test-client", "secret": "test-secret", "key": ""}]}
    }
    yield "login", client.get(reverse("account_login"))
    yield "signup", client.get(reverse("account_signup"))
    yield "password reset", client.get(reverse("account_reset_password"))
    yield "password reset sent", client.get(reverse("account_reset_password_done"))
    yield "google", client.get(reverse("google_login"))
    client.force_login(owner)
    yield "sign out", client.get(reverse("account_logout"))
    yield "password change", client.get(reverse("account_change_password"))


def test_every_page_about_signing_in_says_sign_in_in_sentence_case(client, owner, settings):
    # The house style of every button and heading ("Sign in", "Sign up", "Sign out"), not
    # allauth's title case.
    for name, response in _sign_in_pages(client, owner, settings):
        assert response.status_code == 200, name
        text = response.content.decode()
        assert not re.search(r"Sign (In|Up|Out)|Signup\b", text), (name, text)


def test_the_login_page_names_its_heading_and_button_sign_in(client):
    text = client.get(reverse("account_login")).content.decode()
    assert re.search(r"<title>\s*Sign in\s*· Handoff</title>", text)
    assert re.search(r"<h1>\s*Sign in\s*</h1>", text)
    assert re.search(r"<button[^>]*type=\"submit\"[^>]*>\s*Sign in\s*</button>", text)
