"""Every signed-in page: anonymous → sign in, member → the page, other tenant → 404,
insufficient role → 403."""

import pytest
from django.urls import reverse

from bots.models import Bot, Invitation

pytestmark = pytest.mark.django_db

ORG_PAGES = [
    ("organization_detail", lambda o, b: [o.slug]),
    ("bot_detail", lambda o, b: [o.slug, b.slug]),
    ("members", lambda o, b: [o.slug]),
]


@pytest.mark.parametrize("name,args", ORG_PAGES)
def test_it_sends_anonymous_visitors_to_sign_in(client, acme, acme_bot, name, args):
    response = client.get(reverse(name, args=args(acme, acme_bot)))
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


@pytest.mark.parametrize("name,args", ORG_PAGES)
def test_it_shows_members_their_pages(client, agent, acme, acme_bot, name, args):
    client.force_login(agent)
    response = client.get(reverse(name, args=args(acme, acme_bot)))
    assert response.status_code == 200
    assert "Acme" in response.content.decode()


@pytest.mark.parametrize("name,args", ORG_PAGES)
def test_it_hides_another_organizations_pages(client, outsider, acme, acme_bot, name, args):
    client.force_login(outsider)
    response = client.get(reverse(name, args=args(acme, acme_bot)))
    assert response.status_code == 404


def test_it_hides_another_organizations_bot_under_your_own_slug(client, outsider, globex, acme_bot):
    client.force_login(outsider)
    response = client.get(reverse("bot_detail", args=[globex.slug, acme_bot.slug]))
    assert response.status_code == 404


def test_home_redirects_a_member_to_their_organization(client, owner):
    client.force_login(owner)
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response.url == reverse("organization_detail", args=["acme"])


def test_home_offers_to_create_an_organization_to_someone_without_one(client, superuser):
    client.force_login(superuser)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert "Create an organization" in response.content.decode()
    response = client.post(reverse("organization_create"), {"name": "Initech"})
    assert response.status_code == 302
    assert superuser.memberships.get().organization.name == "Initech"


def test_organization_page_lists_only_its_own_bots(client, owner, acme_bot, globex_bot):
    client.force_login(owner)
    body = client.get(reverse("organization_detail", args=["acme"])).content.decode()
    assert "Acme Support" in body
    assert "Globex Helper" not in body


def test_organization_page_serves_the_bot_list_fragment_to_htmx(client, owner, acme_bot):
    client.force_login(owner)
    response = client.get(reverse("organization_detail", args=["acme"]), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert 'id="bot-list"' in body and "Acme Support" in body
    assert "<html" not in body


def test_an_owner_creates_a_bot(client, owner, acme):
    client.force_login(owner)
    response = client.post(
        reverse("bot_create", args=["acme"]),
        {"name": "Returns desk", "greeting": "Hello!", "colour": "#10b981"},
    )
    bot = Bot.objects.get(organization=acme, name="Returns desk")
    assert response.status_code == 302
    assert response.url == reverse("bot_detail", args=["acme", bot.slug])
    assert bot.public_key.startswith("pk_") and bot.secret_key.startswith("sk_")


def test_an_agent_cannot_create_a_bot(client, agent):
    client.force_login(agent)
    response = client.post(reverse("bot_create", args=["acme"]), {"name": "Sneaky"})
    assert response.status_code == 403
    assert not Bot.objects.filter(name="Sneaky").exists()


def test_an_outsider_cannot_create_a_bot_in_another_organization(client, outsider):
    client.force_login(outsider)
    response = client.post(
        reverse("bot_create", args=["acme"]), {"name": "Sneaky", "colour": "#000000"}
    )
    assert response.status_code == 404
    assert not Bot.objects.filter(name="Sneaky").exists()


def test_a_bad_colour_is_refused_with_a_message(client, owner):
    client.force_login(owner)
    response = client.post(
        reverse("bot_create", args=["acme"]),
        {"name": "Odd", "greeting": "Hi", "colour": "blue"},
        follow=True,
    )
    assert "Check the bot" in response.content.decode()
    assert not Bot.objects.filter(name="Odd").exists()


def test_bot_slugs_stay_unique_within_an_organization(owner, acme):
    from bots.services import bot_create

    first = bot_create(organization=acme, name="Help")
    second = bot_create(organization=acme, name="Help")
    assert (first.slug, second.slug) == ("help", "help-2")


def test_an_agent_cannot_invite(client, agent):
    client.force_login(agent)
    response = client.post(
        reverse("invitation_create", args=["acme"]), {"email": "x@example.com", "role": "agent"}
    )
    assert response.status_code == 403
    assert not Invitation.objects.exists()


def test_an_outsider_cannot_revoke_another_organizations_invitation(client, owner, outsider, acme):
    invitation = Invitation.objects.create(organization=acme, email="new@example.com")
    client.force_login(outsider)
    response = client.post(reverse("invitation_revoke", args=["acme", invitation.pk]))
    assert response.status_code == 404
    response = client.post(reverse("invitation_revoke", args=["globex", invitation.pk]))
    assert response.status_code == 404
    invitation.refresh_from_db()
    assert invitation.revoked_at is None
