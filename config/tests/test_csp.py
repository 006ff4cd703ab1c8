"""A Content-Security-Policy on every page (issue 12, finding 5): scripts and styles from this
server only, a fresh nonce per response, no framing except the widget's own iframe."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


PAGES = {
    "home": lambda bot: reverse("home"),  # redirects to her organization's page
    "organization": lambda bot: reverse("organization_detail", args=["acme"]),
    "bot": lambda bot: reverse("bot_detail", args=["acme", bot.slug]),
    "console": lambda bot: reverse("console", args=["acme"]),
    "knowledge": lambda bot: reverse("bot_knowledge", args=["acme", bot.slug]),
    "integrations": lambda bot: reverse("bot_integrations", args=["acme", bot.slug]),
    "playground": lambda bot: reverse("bot_playground", args=["acme", bot.slug]),
    "members": lambda bot: reverse("members", args=["acme"]),
    "profile": lambda bot: reverse("profile"),
    "admin": lambda bot: reverse("admin:index"),
    "admin list": lambda bot: reverse("admin:knowledge_document_changelist"),
    "chat page": lambda bot: reverse("chat_page", args=[bot.public_key]),
}
SIGNED_OUT_PAGES = {
    "sign in": lambda bot: reverse("account_login"),
    "sign up": lambda bot: reverse("account_signup"),
    "password reset": lambda bot: reverse("account_reset_password"),
    "widget frame": lambda bot: reverse("widget_frame", args=[bot.public_key]),
}


def _get(client, url):
    response = client.get(url, follow=True)
    assert response.status_code == 200, (url, response.status_code)
    assert response["Content-Type"].startswith("text/html")
    return response


@pytest.mark.parametrize("page", [*PAGES, *SIGNED_OUT_PAGES])
def test_every_page_sends_a_policy_that_allows_only_this_servers_scripts(
    client, superuser, owner, acme_bot, page
):
    if page in PAGES:
        # Ada owns Acme; the admin pages want staff, so she is staff here too.
        owner.is_staff = owner.is_superuser = True
        owner.save(update_fields=["is_staff", "is_superuser"])
        client.force_login(owner)
    url = {**PAGES, **SIGNED_OUT_PAGES}[page](acme_bot)

    first, second = _get(client, url), _get(client, url)

    policy = directives(first)
    assert policy["default-src"] == ["'self'"]
    nonce = next(v for v in policy["script-src"] if v.startswith("'nonce-"))
    assert policy["script-src"] == ["'self'", nonce]
    assert policy["style-src"] == ["'self'", nonce]
    assert "'unsafe-inline'" not in first["Content-Security-Policy"]
    assert "'unsafe-eval'" not in first["Content-Security-Policy"]
    assert policy["connect-src"] == ["'self'", "ws://testserver"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    # A fresh nonce per response: one seen in a page says nothing about the next.
    assert nonce not in second["Content-Security-Policy"]
    if page == "widget frame":
        assert "http://testserver" in policy["frame-ancestors"]
        assert "'none'" not in policy["frame-ancestors"]
        assert "X-Frame-Options" not in first
    else:
        assert policy["frame-ancestors"] == ["'none'"]
        assert first["X-Frame-Options"] == "DENY"


def test_pages_served_over_https_allow_secure_sockets_to_this_host_only(client, owner):
    client.force_login(owner)

    response = client.get(reverse("organization_detail", args=["acme"]), secure=True)

    assert directives(response)["connect-src"] == ["'self'", "wss://testserver"]


def test_the_sign_in_form_may_post_on_to_google_when_google_sign_in_is_configured(client, settings):
    settings.CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {
            **settings.CONTENT_SECURITY_POLICY["DIRECTIVES"],
            "form-action": ["'self'", "https://accounts.google.com"],
        }
    }
    response = client.get(reverse("account_login"))
    assert directives(response)["form-action"] == ["'self'", "https://accounts.google.com"]


def test_no_page_carries_an_inline_script_handler_or_style_attribute(client, owner, acme_bot):
    # What the policy would block: a page that still had one would be broken, not unsafe.
    client.force_login(owner)
    for page, url in PAGES.items():
        if page.startswith("admin"):
            continue
        html = _get(client, url(acme_bot)).content.decode()
        tags = re.findall(r"<[a-z][^<>]*>", html)  # real tags: a snippet shown as text is &lt;
        assert "<script>" not in tags and not [t for t in tags if t.startswith("<style")], page
        blocked = re.compile(r"\s(style|on[a-z]+|hx-on[:\w-]*)=")
        assert not [t for t in tags if blocked.search(t)], page
