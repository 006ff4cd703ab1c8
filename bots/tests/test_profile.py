"""A person's name: what customers and teammates read, set at sign-up and on the profile page."""

import importlib

import pytest
from django.apps import apps
from django.urls import reverse

from bots.models import User
from bots.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_display_name_falls_back_to_the_full_name_then_the_address():
    assert UserFactory.build(email="m@x.example", name="Maya Chen").display_name == "Maya Chen"
    assert (
        UserFactory.build(email="m@x.example", first_name="Maya", last_name="C").display_name
        == "Maya C"
    )
    assert UserFactory.build(email="maya@x.example", first_name="").display_name == "maya"


def test_the_migration_names_existing_people_from_their_first_and_last_names():
    backfill = importlib.import_module("bots.migrations.0009_person_names").names_from_full_names
    named = UserFactory(first_name=" Maya ", last_name="Chen")
    nameless = UserFactory(email="kim@example.com", first_name="")
    kept = UserFactory(first_name="Old", name="Chosen Name")
    backfill(apps, None)
    assert [User.objects.get(pk=u.pk).name for u in (named, nameless, kept)] == [
        "Maya Chen",
        "",
        "Chosen Name",
    ]
    assert User.objects.get(pk=nameless.pk).display_name == "kim"


def test_the_profile_page_needs_a_signed_in_person(client):
    for response in (client.get(reverse("profile")), client.post(reverse("profile"))):
        assert response.status_code == 302
        assert response.url.startswith(reverse("account_login"))


def test_the_top_bar_links_to_ones_profile_by_name(client, agent):
    client.force_login(agent)
    page = client.get(reverse("organization_detail", args=["acme"])).content.decode()
    assert f'<a href="{reverse("profile")}">Sam</a>' in page


def test_a_person_changes_their_display_name(client, agent):
    client.force_login(agent)
    page = client.get(reverse("profile")).content.decode()
    assert 'value="Sam"' in page and agent.email in page

    response = client.post(reverse("profile"), {"name": "  Sam Rivera "})
    assert response.status_code == 302 and response.url == reverse("profile")
    agent.refresh_from_db()
    assert agent.display_name == "Sam Rivera"
    assert "Your name is now Sam Rivera." in client.get(reverse("profile")).content.decode()


@pytest.mark.parametrize(
    "name,error",
    [("  ", "This field is required."), ("S" * 81, "at most 80 characters"), ("a\tb", "one line")],
)
def test_a_bad_name_is_refused_inline_and_changes_nothing(client, agent, name, error):
    client.force_login(agent)
    response = client.post(reverse("profile"), {"name": name})
    assert response.status_code == 400
    body = response.content.decode()
    assert error in body and 'class="errorlist' in body
    agent.refresh_from_db()
    assert agent.name == ""


def test_the_profile_page_edits_only_ones_own_account(client, agent, owner):
    client.force_login(agent)
    client.post(
        reverse("profile"),
        {"name": "Sam Rivera", "email": owner.email, "user": owner.pk, "id": owner.pk},
    )
    owner.refresh_from_db()
    agent.refresh_from_db()
    assert (owner.display_name, owner.email) == ("Ada", "ada@acme.example")
    assert (agent.display_name, agent.email) == ("Sam Rivera", "sam@acme.example")
