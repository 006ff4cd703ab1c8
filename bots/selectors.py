"""Reads scoped to the signed-in user. A row of another organization is a 404, never a 403:
we do not confirm to outsiders that it exists."""

from __future__ import annotations

import hmac

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from bots.models import MANAGER_ROLES, Bot, Invitation, Membership, Organization, Role


def organization_list_for_user(*, user) -> QuerySet[Organization]:
    if not user.is_authenticated:
        return Organization.objects.none()
    return Organization.objects.filter(memberships__user=user).order_by("name")


def memberships_owned(*, user) -> QuerySet[Membership]:
    """The user's own owner memberships (the weekly gaps e-mail is an owner's), by name."""
    return (
        Membership.objects.filter(user=user, role=Role.OWNER)
        .select_related("organization")
        .order_by("organization__name")
    )


def organization_ids_with_role(*, user, roles=MANAGER_ROLES) -> list[int]:
    """Organizations where the user holds one of `roles`: what Django admin is scoped to."""
    return list(
        Membership.objects.filter(user=user, role__in=roles).values_list(
            "organization_id", flat=True
        )
    )


def membership_get(*, user, organization_slug: str) -> Membership:
    """The user's membership of the organization, read fresh: the member sockets ask on every
    frame, with a user object from when they connected, so a deactivated account is checked
    here in the database rather than on that object."""
    if not user.is_authenticated:
        raise Http404
    return get_object_or_404(
        Membership.objects.select_related("organization", "user"),
        user=user,
        user__is_active=True,
        organization__slug=organization_slug,
    )


def membership_list(*, organization: Organization) -> QuerySet[Membership]:
    return organization.memberships.select_related("user").order_by("role", "user__email")


def membership_get_for_manager(*, membership: Membership, member_id: int) -> Membership:
    """A member of the manager's own organization; another organization's is a 404."""
    return get_object_or_404(
        Membership.objects.select_related("user"),
        organization=membership.organization,
        pk=member_id,
    )


def bot_list(*, organization: Organization) -> QuerySet[Bot]:
    return organization.bots.order_by("name")


def bot_get(*, membership: Membership, bot_slug: str) -> Bot:
    return get_object_or_404(Bot, organization=membership.organization, slug=bot_slug)


def invitation_list_open(*, organization: Organization) -> QuerySet[Invitation]:
    return organization.invitations.filter(
        accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).select_related("invited_by")


def invitation_get_for_manager(*, membership: Membership, invitation_id: int) -> Invitation:
    return get_object_or_404(Invitation, organization=membership.organization, pk=invitation_id)


def invitation_get_open(*, token: str) -> Invitation:
    invitation = (
        Invitation.objects.select_related("organization", "invited_by").filter(token=token).first()
    )
    if invitation is None or not invitation.is_open:
        raise Http404("This invitation does not exist, has expired or was already used.")
    return invitation


def bot_for_public_key(*, public_key: str) -> Bot | None:
    """The bot a widget names: the public key identifies it and grants nothing by itself."""
    return Bot.objects.filter(public_key=public_key).first()


def bot_for_secret_key(*, secret_key: str) -> Bot | None:
    """The bot whose secret key authenticates an API call, or None."""
    if not secret_key:
        return None
    bot = Bot.objects.filter(secret_key=secret_key).first()
    # The row is found by an index lookup; compare_digest makes the final yes/no constant-time
    # and byte-exact whatever the database's comparison does.
    if bot is None or not hmac.compare_digest(bot.secret_key.encode(), secret_key.encode()):
        return None
    return bot
