"""The members page's role and remove buttons: owners only, within their own organization, and
never leaving an organization without an owner."""

import pytest
from django.urls import reverse

from bots.models import Membership, Role

pytestmark = pytest.mark.django_db


def _membership(user, organization):
    return Membership.objects.get(user=user, organization=organization)


def test_an_owner_makes_an_agent_an_admin(client, owner, agent, acme):
    client.force_login(owner)
    sam = _membership(agent, acme)
    response = client.post(reverse("member_set_role", args=["acme", sam.pk]), {"role": "admin"})
    assert response.status_code == 302 and response.url == reverse("members", args=["acme"])
    sam.refresh_from_db()
    assert sam.role == Role.ADMIN
    page = client.get(response.url).content.decode()
    assert f"{agent.display_name} is now admin." in page


def test_an_owner_removes_an_agent(client, owner, agent, acme):
    client.force_login(owner)
    sam = _membership(agent, acme)
    response = client.post(reverse("member_remove", args=["acme", sam.pk]))
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=sam.pk).exists()
    page = client.get(response.url).content.decode()
    assert "is no longer a member of Acme" in page
    assert agent.email not in page.split("Pending invitations")[0]


def test_the_last_owner_can_neither_leave_nor_step_down(client, owner, acme):
    client.force_login(owner)
    ada = _membership(owner, acme)
    for name, data in (("member_remove", {}), ("member_set_role", {"role": "agent"})):
        response = client.post(reverse(name, args=["acme", ada.pk]), data, follow=True)
        assert "keeps at least one owner" in response.content.decode()
    ada.refresh_from_db()
    assert ada.role == Role.OWNER


def test_an_owner_who_steps_down_lands_on_the_organization_page(client, owner, admin_member, acme):
    Membership.objects.filter(user=admin_member, organization=acme).update(role=Role.OWNER)
    client.force_login(owner)
    ada = _membership(owner, acme)
    response = client.post(reverse("member_set_role", args=["acme", ada.pk]), {"role": "admin"})
    assert response.url == reverse("organization_detail", args=["acme"])
    ada.refresh_from_db()
    assert ada.role == Role.ADMIN


def test_an_unknown_role_is_refused_with_a_message(client, owner, agent, acme):
    client.force_login(owner)
    sam = _membership(agent, acme)
    response = client.post(
        reverse("member_set_role", args=["acme", sam.pk]), {"role": "god"}, follow=True
    )
    assert "A role is owner, admin or agent" in response.content.decode()
    sam.refresh_from_db()
    assert sam.role == Role.AGENT


@pytest.mark.parametrize("persona", ["agent", "admin_member"])
@pytest.mark.parametrize(
    "name,data", [("member_remove", {}), ("member_set_role", {"role": "owner"})]
)
def test_admins_and_agents_cannot_manage_members(request, client, owner, acme, persona, name, data):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    ada = _membership(owner, acme)
    response = client.post(reverse(name, args=["acme", ada.pk]), data)
    assert response.status_code == 403
    ada.refresh_from_db()
    assert ada.role == Role.OWNER


@pytest.mark.parametrize(
    "name,data", [("member_remove", {}), ("member_set_role", {"role": "agent"})]
)
def test_an_owner_cannot_touch_another_organizations_member(
    client, owner, outsider, globex, name, data
):
    olga = _membership(outsider, globex)
    client.force_login(owner)
    # Under their own organization's slug: not one of its members. Under Globex's: not a member.
    assert client.post(reverse(name, args=["acme", olga.pk]), data).status_code == 404
    assert client.post(reverse(name, args=["globex", olga.pk]), data).status_code == 404
    olga.refresh_from_db()
    assert olga.role == Role.OWNER


def test_the_buttons_show_to_owners_only(client, owner, agent, acme):
    client.force_login(agent)
    assert "Change role" not in client.get(reverse("members", args=["acme"])).content.decode()
    client.force_login(owner)
    assert "Change role" in client.get(reverse("members", args=["acme"])).content.decode()


def test_get_is_not_allowed(client, owner, agent, acme):
    client.force_login(owner)
    sam = _membership(agent, acme)
    assert client.get(reverse("member_remove", args=["acme", sam.pk])).status_code == 405
