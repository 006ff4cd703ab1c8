"""Removing a member, changing their role and deactivating a person: each a service that
tells the person's open sockets after commit (`user.<id>`), also when done in Django admin."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from bots import services
from bots.models import Membership, Role

pytestmark = pytest.mark.django_db


def _membership(user, organization):
    return Membership.objects.get(user=user, organization=organization)


def test_it_removes_a_member_and_tells_their_sockets_after_commit(
    agent, acme, broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.membership_remove(membership=_membership(agent, acme))
        assert broadcasts == []  # not before the row is gone for good
    assert not Membership.objects.filter(user=agent).exists()
    assert broadcasts == [(f"user.{agent.pk}", "membership.removed", {"organization_id": acme.pk})]


def test_it_takes_the_admin_flag_of_a_removed_admin(admin_member, owner, acme):
    assert admin_member.is_staff
    services.membership_remove(membership=_membership(admin_member, acme))
    admin_member.refresh_from_db()
    assert not admin_member.is_staff


def test_it_keeps_one_owner(owner, acme):
    membership = _membership(owner, acme)
    with pytest.raises(ValidationError, match="at least one owner"):
        services.membership_remove(membership=membership)
    with pytest.raises(ValidationError, match="at least one owner"):
        services.membership_set_role(membership=membership, role=Role.AGENT)
    assert _membership(owner, acme).role == Role.OWNER


def test_it_changes_a_role_and_tells_the_sockets_after_commit(
    agent, acme, broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.membership_set_role(membership=_membership(agent, acme), role=Role.ADMIN)
    agent.refresh_from_db()
    assert _membership(agent, acme).role == Role.ADMIN and agent.is_staff
    assert broadcasts == [
        (f"user.{agent.pk}", "membership.role_changed", {"organization_id": acme.pk})
    ]


def test_the_same_role_again_changes_nothing(
    agent, acme, broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.membership_set_role(membership=_membership(agent, acme), role=Role.AGENT)
    assert broadcasts == []


def test_an_unknown_role_is_refused(agent, acme):
    with pytest.raises(ValidationError, match="owner, admin or agent"):
        services.membership_set_role(membership=_membership(agent, acme), role="boss")


def test_it_deactivates_a_person_and_tells_every_socket_after_commit(
    agent, broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.user_set_active(user=agent, is_active=False)
    agent.refresh_from_db()
    assert not agent.is_active
    assert broadcasts == [(f"user.{agent.pk}", "user.deactivated", {})]
    with django_capture_on_commit_callbacks(execute=True):
        services.user_set_active(user=agent, is_active=True)
    assert len(broadcasts) == 1  # reactivating closes nothing


def test_an_owner_who_upgrades_by_founding_again_is_told_of_the_new_role(
    agent, acme, broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.membership_add(organization=acme, user=agent, role=Role.OWNER)
    assert (f"user.{agent.pk}", "membership.role_changed", {"organization_id": acme.pk}) in (
        broadcasts
    )


# --- The same through Django admin ------------------------------------------------------------
def test_deleting_a_membership_in_admin_tells_the_sockets(
    client, owner, agent, acme, broadcasts, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    membership = _membership(agent, acme)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:bots_membership_delete", args=[membership.pk]), {"post": "yes"}
        )
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert (f"user.{agent.pk}", "membership.removed", {"organization_id": acme.pk}) in broadcasts


def test_deleting_memberships_in_bulk_in_admin_tells_each_person(
    client, owner, agent, admin_member, acme, broadcasts, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    ids = [_membership(agent, acme).pk, _membership(admin_member, acme).pk]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:bots_membership_changelist"),
            {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
        )
    assert not Membership.objects.filter(pk__in=ids).exists()
    told = {group for group, event, _ in broadcasts if event == "membership.removed"}
    assert told == {f"user.{agent.pk}", f"user.{admin_member.pk}"}


def _membership_form(membership, **changes):
    return {
        "role": membership.role,
        "availability": membership.availability,
        "capacity": membership.capacity,
        "queues": ",".join(membership.queues),
        "last_seen_at_0": "",
        "last_seen_at_1": "",
        **changes,
    }


def test_changing_a_role_in_admin_tells_the_sockets(
    client, owner, agent, acme, broadcasts, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    membership = _membership(agent, acme)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:bots_membership_change", args=[membership.pk]),
            _membership_form(membership, role=Role.ADMIN, capacity=3),
        )
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN and membership.capacity == 3
    assert broadcasts == [
        (f"user.{agent.pk}", "membership.role_changed", {"organization_id": acme.pk})
    ]


def test_admin_cannot_move_a_membership_to_another_person_or_organization(
    client, superuser, owner, agent, acme, globex
):
    # Moving it would take Sam out of Acme with no event: removal is its own, told, action.
    client.force_login(superuser)
    membership = _membership(agent, acme)
    response = client.post(
        reverse("admin:bots_membership_change", args=[membership.pk]),
        _membership_form(membership, user=owner.pk, organization=globex.pk),
    )
    assert response.status_code == 302
    membership.refresh_from_db()
    assert (membership.user_id, membership.organization_id) == (agent.pk, acme.pk)


def test_demoting_the_last_owner_in_admin_is_refused_with_the_reason(client, owner, acme):
    client.force_login(owner)
    membership = _membership(owner, acme)
    response = client.post(
        reverse("admin:bots_membership_change", args=[membership.pk]),
        _membership_form(membership, role=Role.AGENT),
    )
    assert response.status_code == 200
    assert "at least one owner" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == Role.OWNER


def test_deactivating_a_person_in_admin_tells_their_sockets(
    client, superuser, agent, broadcasts, django_capture_on_commit_callbacks
):
    client.force_login(superuser)
    form = {
        "username": agent.username,
        "name": agent.name,
        "email": agent.email,
        "first_name": agent.first_name,
        "last_name": agent.last_name,
        "is_active": "",  # unticked
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": agent.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": agent.date_joined.strftime("%H:%M:%S"),
    }
    form.pop("is_active")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:bots_user_change", args=[agent.pk]), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    agent.refresh_from_db()
    assert not agent.is_active
    assert (f"user.{agent.pk}", "user.deactivated", {}) in broadcasts


def test_deleting_a_person_in_admin_tells_their_sockets(
    client, superuser, agent, broadcasts, django_capture_on_commit_callbacks
):
    client.force_login(superuser)
    agent_id = agent.pk
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:bots_user_delete", args=[agent_id]), {"post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.filter(user_id=agent_id).exists()
    assert (f"user.{agent_id}", "user.deleted", {}) in broadcasts
