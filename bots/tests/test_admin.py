"""Django admin is tenant-facing (owners and admins configure bots there), so it is isolated
like every other view."""

import pytest
from django.urls import reverse

from bots.models import Bot

pytestmark = pytest.mark.django_db


def test_an_owner_sees_only_their_bots_in_admin(client, owner, acme_bot, globex_bot):
    client.force_login(owner)
    body = client.get(reverse("admin:bots_bot_changelist")).content.decode()
    assert "Acme Support" in body
    assert "Globex Helper" not in body


def test_an_owner_cannot_open_another_organizations_bot_in_admin(client, outsider, acme_bot):
    client.force_login(outsider)
    response = client.get(reverse("admin:bots_bot_change", args=[acme_bot.pk]))
    # Django admin answers a row outside the queryset with a redirect and "doesn't exist".
    assert response.status_code == 302
    assert "Acme Support" not in client.get(response.url).content.decode()


def test_an_owner_cannot_edit_another_organizations_bot_in_admin(client, outsider, acme_bot):
    client.force_login(outsider)
    client.post(
        reverse("admin:bots_bot_change", args=[acme_bot.pk]),
        {"name": "Pwned", "slug": "pwned", "organization": acme_bot.organization_id},
    )
    acme_bot.refresh_from_db()
    assert acme_bot.name == "Acme Support"


def test_an_owner_can_only_pick_their_own_organization_for_a_new_bot(client, outsider, acme):
    client.force_login(outsider)
    body = client.get(reverse("admin:bots_bot_add")).content.decode()
    assert "Globex" in body
    assert ">Acme<" not in body
    response = client.post(
        reverse("admin:bots_bot_add"),
        {
            "organization": acme.pk,
            "name": "Planted",
            "slug": "planted",
            "greeting": "Hi",
            "persona": "",
            "colour": "#123456",
            "allowed_origins": "",
        },
    )
    assert response.status_code == 200  # the form is shown again with an error
    assert not Bot.objects.filter(name="Planted").exists()


def test_an_admin_member_edits_a_bot_in_admin(client, admin_member, acme_bot):
    client.force_login(admin_member)
    response = client.post(
        reverse("admin:bots_bot_change", args=[acme_bot.pk]),
        {
            "organization": acme_bot.organization_id,
            "name": "Acme Help",
            "slug": "acme-support",
            "greeting": "Hello",
            "persona": "Brief.",
            "colour": "#123456",
            "allowed_origins": "https://shop.acme.example,https://acme.example",
            "embedding_model": acme_bot.embedding_model,
            # How conversations end: "No" hands off, no "Did that answer…?" question.
            "not_answered": "handoff",
            "inactivity_minutes": 45,
            "reopen_hours": 48,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    acme_bot.refresh_from_db()
    assert acme_bot.name == "Acme Help"
    assert (acme_bot.not_answered, acme_bot.ask_if_answered) == ("handoff", False)
    assert (acme_bot.inactivity_minutes, acme_bot.reopen_hours) == (45, 48)
    assert acme_bot.allowed_origins == ["https://shop.acme.example", "https://acme.example"]


def test_admin_refuses_an_origin_with_a_path(client, owner, acme_bot):
    client.force_login(owner)
    response = client.post(
        reverse("admin:bots_bot_change", args=[acme_bot.pk]),
        {
            "organization": acme_bot.organization_id,
            "name": "Acme Support",
            "slug": "acme-support",
            "greeting": "Hello",
            "persona": "",
            "colour": "#123456",
            "allowed_origins": "https://shop.acme.example/checkout",
        },
    )
    assert response.status_code == 200
    assert "is not an origin" in response.content.decode()


def test_an_admin_member_cannot_manage_memberships(client, admin_member):
    client.force_login(admin_member)
    assert client.get(reverse("admin:bots_membership_changelist")).status_code == 403


def test_agents_have_no_admin(client, agent):
    client.force_login(agent)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert reverse("admin:login") in response.url


def test_owners_do_not_see_user_accounts_or_tasks(client, owner):
    client.force_login(owner)
    body = client.get(reverse("admin:index")).content.decode()
    assert "Bots" in body
    assert reverse("admin:bots_user_changelist") not in body
    assert client.get(reverse("admin:bots_user_changelist")).status_code == 403


def test_the_superuser_sees_every_organization(client, superuser, acme_bot, globex_bot):
    client.force_login(superuser)
    body = client.get(reverse("admin:bots_bot_changelist")).content.decode()
    assert "Acme Support" in body and "Globex Helper" in body


def test_the_superuser_edits_a_persons_display_name(client, superuser, agent):
    client.force_login(superuser)
    assert "Sam" in client.get(reverse("admin:bots_user_changelist")).content.decode()
    page = client.get(reverse("admin:bots_user_change", args=[agent.pk])).content.decode()
    assert 'name="name"' in page
