"""Every door in has the same lockout: the admin's sign-in is the product's sign-in."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def ada(owner):
    owner.set_password(PASSWORD)
    owner.save()
    return owner


def test_the_admins_sign_in_sends_people_to_the_products(client):
    response = client.get("/admin/login/?next=/admin/bots/bot/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/admin/bots/bot/"


def test_the_admin_no_longer_checks_passwords_posted_to_it(client, ada):
    for _ in range(30):
        client.post("/admin/login/", {"username": ada.email, "password": "wrong"})
    response = client.post("/admin/login/", {"username": ada.email, "password": PASSWORD})
    assert response.status_code == 302
    assert SESSION_KEY not in client.session  # not signed in: the admin's form is gone


def test_after_five_failures_the_right_password_is_refused_too(client, ada):
    for _ in range(5):
        client.post("/accounts/login/", {"login": ada.email, "password": "wrong"})
    client.post("/accounts/login/", {"login": ada.email, "password": PASSWORD})
    assert SESSION_KEY not in client.session


def test_a_signed_in_owner_goes_on_to_the_admin(client, ada):
    client.force_login(ada)
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_signed_in_agent_is_refused_without_a_loop(client, agent):
    client.force_login(agent)
    assert client.get("/admin/login/?next=/admin/").status_code == 403


def test_an_outside_next_is_not_followed(client, ada):
    client.force_login(ada)
    response = client.get("/admin/login/?next=https://evil.example/")
    assert response["Location"] == "/admin/"
