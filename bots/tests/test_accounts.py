"""Sign-up founds an organization; invitations bring people into an existing one."""

from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from bots.models import Invitation, Membership, Organization, Role, User
from bots.services import invitation_create

pytestmark = pytest.mark.django_db


def _sign_up(client, email, organization_name="", name="Lena Park"):
    return client.post(
        reverse("account_signup"),
        {
            "name": name,
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
    _sign_up(client, "kim@example.com", name="Kim Lee")
    assert Organization.objects.get().name == "Kim Lee's team"


def test_it_asks_the_new_user_their_name(client):
    page = client.get(reverse("account_signup")).content.decode()
    assert 'name="name"' in page and "Your name" in page

    response = _sign_up(client, "lena@initech.example", "Initech", name="  Lena Park  ")
    assert response.status_code == 302
    user = User.objects.get(email="lena@initech.example")
    assert (user.name, user.display_name) == ("Lena Park", "Lena Park")


@pytest.mark.parametrize(
    "name,error",
    [
        ("", "This field is required."),
        ("   ", "This field is required."),
        ("L" * 81, "at most 80 characters"),
        ("Lena\nPark", "on one line"),
    ],
)
def test_a_sign_up_without_a_usable_name_is_refused_on_the_form(client, name, error):
    response = _sign_up(client, "lena@initech.example", "Initech", name=name)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not User.objects.exists() and not Organization.objects.exists()


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
    mail.outbox.clear()
    _sign_up(client, "newbie@example.com", name="Nina Newbie")

    newbie = User.objects.get(email="newbie@example.com")
    assert list(newbie.memberships.values_list("organization__slug", "role")) == [("acme", "agent")]
    assert not newbie.is_staff, "agents work the console, not Django admin"
    assert Organization.objects.count() == 1, "no organization of their own"
    invitation.refresh_from_db()
    assert invitation.accepted_by == newbie
    assert newbie.display_name == "Nina Newbie"


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


# --- Signing up through an invitation ---------------------------------------------------------
@pytest.fixture
def sams_invitation(owner, acme):
    return invitation_create(
        organization=acme, email="sam.rivera@example.com", role=Role.AGENT, invited_by=owner
    )


def _follow_invitation(client, invitation):
    assert client.get(reverse("invitation_accept", args=[invitation.token])).status_code == 200


def test_the_owner_may_name_the_invitee_and_the_mail_greets_them(
    client, owner, acme, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("invitation_create", args=["acme"]),
            {"email": "sam.rivera@example.com", "name": " Sam Rivera ", "role": "agent"},
        )
    assert Invitation.objects.get().name == "Sam Rivera"
    assert mail.outbox[0].body.startswith("Hello Sam Rivera,")
    assert "Sam Rivera" in client.get(reverse("members", args=["acme"])).content.decode()


def test_the_invited_sign_up_page_says_what_the_visitor_joins(client, sams_invitation):
    sams_invitation.name = "Sam Rivera"
    sams_invitation.save(update_fields=["name"])
    _follow_invitation(client, sams_invitation)
    page = client.get(reverse("account_signup")).content.decode()
    assert "You're joining <strong>Acme</strong> as an agent." in page
    assert 'name="organization_name"' not in page
    assert 'value="sam.rivera@example.com"' in page and "readonly" in page
    assert 'value="Sam Rivera"' in page, "the name the owner typed is pre-filled"


def test_a_plain_sign_up_page_asks_for_an_organization(client):
    page = client.get(reverse("account_signup")).content.decode()
    assert 'name="organization_name"' in page
    assert "You're joining" not in page


def test_an_invited_sign_up_joins_verified_and_sends_no_confirmation(client, sams_invitation):
    _follow_invitation(client, sams_invitation)
    mail.outbox.clear()
    response = _sign_up(client, "sam.rivera@example.com", name="Sam Rivera")
    assert response.status_code == 302
    sam = User.objects.get(email="sam.rivera@example.com")
    assert [(m.organization.slug, m.role) for m in sam.memberships.all()] == [("acme", "agent")]
    address = EmailAddress.objects.get(user=sam)
    assert (address.email, address.verified, address.primary) == (sam.email, True, True)
    assert mail.outbox == [], "the invitation link already proved the address"


def test_a_sign_up_without_an_invitation_still_confirms_the_address(client):
    # An address no other test signs up with: allauth allows one confirmation mail per address
    # every few minutes, counted in the cache.
    _sign_up(client, "olivia@initech.example", "Initech")
    assert not EmailAddress.objects.get(email="olivia@initech.example").verified
    assert [m.to for m in mail.outbox] == [["olivia@initech.example"]]


def test_an_invited_sign_up_with_another_address_is_refused_clearly(client, sams_invitation):
    _follow_invitation(client, sams_invitation)
    response = _sign_up(client, "someone.else@example.com", name="Someone Else")
    assert response.status_code == 200
    body = response.content.decode()
    assert "This invitation is for sam.rivera@example.com" in body
    assert "Sign up without the invitation" in body
    assert not User.objects.filter(email="someone.else@example.com").exists()


def test_the_invitee_can_sign_up_without_the_invitation(client, sams_invitation):
    _follow_invitation(client, sams_invitation)
    response = client.post(reverse("signup_without_invitation"))
    assert response.status_code == 302 and response.url == reverse("account_signup")
    page = client.get(reverse("account_signup")).content.decode()
    assert 'name="organization_name"' in page and "You're joining" not in page

    _sign_up(client, "someone.else@example.com", "Initech", name="Someone Else")
    user = User.objects.get(email="someone.else@example.com")
    assert [(m.organization.name, m.role) for m in user.memberships.all()] == [("Initech", "owner")]
    sams_invitation.refresh_from_db()
    assert sams_invitation.is_open, "the invitation waits for its own address"


def test_a_google_sign_up_with_another_address_ignores_the_invitation(rf, sams_invitation):
    from allauth.account.signals import user_signed_up
    from django.contrib.sessions.backends.db import SessionStore

    from bots.forms import PENDING_INVITATION_KEY
    from bots.tests.factories import UserFactory

    user = UserFactory(email="gina@gmail.example", first_name="Gina", last_name="Rossi")
    request = rf.get("/")
    request.session = SessionStore()
    request.session[PENDING_INVITATION_KEY] = sams_invitation.token
    user_signed_up.send(sender=User, request=request, user=user, sociallogin=object())
    assert [(m.organization.name, m.role) for m in user.memberships.all()] == [
        ("Gina Rossi's team", "owner")
    ]
    user.refresh_from_db()
    assert user.name == "Gina Rossi", "Google's name becomes the display name"
