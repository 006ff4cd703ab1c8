"""Sign-up founds an organization; invitations bring people into an existing one."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from bots.models import Invitation, Membership, Organization, Role, User
from bots.services import invitation_create

pytestmark = pytest.mark.django_db


def _sign_up(client, email, organization_name=""):
    return client.post(
        reverse("account_signup"),
        {
            "email": email,
            "password1": "a-long-and-unusual-passphrase",
            "password2": "a-long-and-unusual-passphrase",
            "organization_name": organization_name,
        },
    )


def test_it_makes_the_new_user_owner_of_a_new_organization(client):
    response = _sign_up(client, "lena@initech.example", "Initech")
    assert response.status_code == 302
    user = User.objects.get(email="lena@initech.example")
    membership = Membership.objects.get(user=user)
    assert membership.organization.name == "Initech"
    assert membership.role == Role.OWNER
    assert user.is_staff, "owners configure their organization in Django admin"
    assert client.get(reverse("home")).url == reverse(
        "organization_detail", args=[membership.organization.slug]
    )


def test_it_names_the_organization_when_the_user_left_it_blank(client):
    _sign_up(client, "kim@example.com")
    assert Organization.objects.get().name == "kim's team"


def test_it_refuses_a_second_account_with_the_same_email(client, owner):
    response = _sign_up(client, "ADA@acme.example", "Acme 2")
    assert response.status_code == 200
    assert User.objects.filter(email__iexact="ada@acme.example").count() == 1
    assert not Organization.objects.filter(name="Acme 2").exists()


def test_the_owner_invites_an_agent_who_signs_up_into_the_organization(
    client, owner, acme, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("invitation_create", args=["acme"]),
            {"email": "Newbie@Example.com", "role": "agent"},
        )
    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert invitation.email == "newbie@example.com"
    assert len(mail.outbox) == 1
    assert invitation.token in mail.outbox[0].body

    client.logout()
    page = client.get(reverse("invitation_accept", args=[invitation.token]))
    assert "Join Acme" in page.content.decode()
    _sign_up(client, "newbie@example.com")

    newbie = User.objects.get(email="newbie@example.com")
    assert list(newbie.memberships.values_list("organization__slug", "role")) == [("acme", "agent")]
    assert not newbie.is_staff, "agents work the console, not Django admin"
    assert Organization.objects.count() == 1, "no organization of their own"
    invitation.refresh_from_db()
    assert invitation.accepted_by == newbie


def test_a_signed_in_user_accepts_an_invitation(client, outsider, owner, acme):
    invitation = invitation_create(
        organization=acme, email=outsider.email, role=Role.ADMIN, invited_by=owner
    )
    client.force_login(outsider)
    response = client.post(reverse("invitation_accept", args=[invitation.token]))
    assert response.status_code == 302
    assert Membership.objects.get(user=outsider, organization=acme).role == Role.ADMIN


def test_an_invitation_cannot_be_used_by_someone_else(client, outsider, owner, acme):
    invitation = invitation_create(
        organization=acme, email="someone@example.com", role=Role.AGENT, invited_by=owner
    )
    client.force_login(outsider)
    response = client.post(reverse("invitation_accept", args=[invitation.token]))
    assert response.status_code == 400
    assert "someone@example.com" in response.content.decode()
    assert not Membership.objects.filter(user=outsider, organization=acme).exists()


@pytest.mark.parametrize("state", ["expired", "revoked", "accepted", "unknown"])
def test_a_dead_invitation_is_not_found(client, owner, acme, state):
    invitation = invitation_create(
        organization=acme, email="late@example.com", role=Role.AGENT, invited_by=owner
    )
    token = invitation.token
    if state == "expired":
        invitation.expires_at = timezone.now() - timedelta(minutes=1)
    elif state == "revoked":
        invitation.revoked_at = timezone.now()
    elif state == "accepted":
        invitation.accepted_at = timezone.now()
    else:
        token = "not-a-token"
    invitation.save()
    assert client.get(reverse("invitation_accept", args=[token])).status_code == 404


def test_reinviting_resends_the_same_invitation(owner, acme, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = invitation_create(
            organization=acme, email="a@example.com", role="agent", invited_by=owner
        )
        second = invitation_create(
            organization=acme, email="A@example.com", role="admin", invited_by=owner
        )
    assert first.pk == second.pk and second.role == "admin"
    assert Invitation.objects.count() == 1
    assert len(mail.outbox) == 2


def test_inviting_an_existing_member_is_refused_clearly(client, owner, agent):
    client.force_login(owner)
    response = client.post(
        reverse("invitation_create", args=["acme"]), {"email": agent.email, "role": "agent"}
    )
    assert response.status_code == 400
    assert "already a member" in response.content.decode()


def test_a_malformed_invitation_is_refused_with_the_field_named(client, owner):
    client.force_login(owner)
    response = client.post(
        reverse("invitation_create", args=["acme"]), {"email": "not an email", "role": "owner"}
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "Enter a valid email address" in body
    assert "Select a valid choice" in body


def test_the_owner_revokes_an_invitation(client, owner, acme):
    invitation = invitation_create(
        organization=acme, email="x@example.com", role="agent", invited_by=owner
    )
    client.force_login(owner)
    client.post(reverse("invitation_revoke", args=["acme", invitation.pk]))
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    body = client.get(reverse("members", args=["acme"])).content.decode()
    assert "Pending invitations" not in body


def test_a_google_sign_up_is_onboarded_too(rf, db):
    """The social sign-up path skips our form; the user_signed_up signal onboards them."""
    from allauth.account.signals import user_signed_up
    from django.contrib.sessions.backends.db import SessionStore

    from bots.tests.factories import UserFactory

    user = UserFactory(email="gina@gmail.example", first_name="Gina")
    request = rf.get("/")
    request.session = SessionStore()
    user_signed_up.send(sender=User, request=request, user=user, sociallogin=object())
    assert user.memberships.get().role == Role.OWNER


def test_google_sign_in_is_offered_only_when_configured(client, settings):
    assert "Google" not in client.get(reverse("account_login")).content.decode()
