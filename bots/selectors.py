"""Reads scoped to the signed-in user. A row of another organization is a 404, never a 403:
we do not confirm to outsiders that it exists."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from bots.models import MANAGER_ROLES, Bot, Invitation, Membership, Organization


def organization_list_for_user(*, user) -> QuerySet[Organization]:
    if not user.is_authenticated:
        return Organization.objects.none()
    return Organization.objects.filter(memberships__user=user).order_by("name")


def organization_ids_with_role(*, user, roles=MANAGER_ROLES) -> list[int]:
    """Organizations where the user holds one of `roles`: what Django admin is scoped to."""
    return list(
        Membership.objects.filter(user=user, role__in=roles).values_list(
            "organization_id", flat=True
        )
    )


def membership_get(*, user, organization_slug: str) -> Membership:
    if not user.is_authenticated:
        raise Http404
    return get_object_or_404(
        Membership.objects.select_related("organization"),
        user=user,
        organization__slug=organization_slug,
    )


def membership_list(*, organization: Organization) -> QuerySet[Membership]:
    return organization.memberships.select_related("user").order_by("role", "user__email")


def bot_list(*, organization: Organization) -> QuerySet[Bot]:
    return organization.bots.order_by("name")


def bot_get(*, membership: Membership, bot_slug: str) -> Bot:
    return get_object_or_404(Bot, organization=membership.organization, slug=bot_slug)


def bot_get_public(*, public_key: str) -> Bot:
    """The bot behind a widget key, for the public widget endpoints. The key grants nothing by
    itself: what a page may do is decided by the bot's allowed origins."""
    return get_object_or_404(Bot, public_key=public_key)


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
