"""Writes for tenants, people and bots. Each service owns its transaction and side effects."""

from __future__ import annotations

import contextlib
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from bots.events import bot_created
from bots.models import MANAGER_ROLES, Bot, Invitation, Membership, Organization, Role, User
from bots.selectors import bot_list
from config import realtime

log = logging.getLogger(__name__)


def _unique_slug(model, base: str, **scope) -> str:
    root = slugify(base)[:50] or "x"
    slug, n = root, 1
    while model.objects.filter(slug=slug, **scope).exists():
        n += 1
        slug = f"{root}-{n}"
    return slug


def _sync_staff_flag(user: User) -> None:
    """Owners and admins configure their organization in Django admin, which needs is_staff.
    What they can see there is scoped by bots.admin.TenantAdmin, not by this flag."""
    is_manager = user.memberships.filter(role__in=MANAGER_ROLES).exists()
    if user.is_superuser or user.is_staff == is_manager:
        return
    user.is_staff = is_manager
    user.save(update_fields=["is_staff"])


@transaction.atomic
def organization_create(*, name: str, owner: User) -> Organization:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "An organization needs a name."})
    organization = Organization.objects.create(name=name, slug=_unique_slug(Organization, name))
    membership_add(organization=organization, user=owner, role=Role.OWNER)
    return organization


@transaction.atomic
def membership_add(*, organization: Organization, user: User, role: str) -> Membership:
    membership, created = Membership.objects.get_or_create(
        organization=organization, user=user, defaults={"role": role}
    )
    if not created and membership.role != role and role == Role.OWNER:
        membership.role = role
        membership.save(update_fields=["role"])
        _tell_sockets_role_changed(membership)
    _sync_staff_flag(user)
    return membership


def membership_check_owner_kept(*, membership: Membership, role: str | None = None) -> None:
    """Refuse to leave an organization without an owner: removing its last owner (`role` None)
    or giving them `role`. Nobody could then manage its members."""
    if membership.role != Role.OWNER or role == Role.OWNER:
        return
    owners = Membership.objects.filter(organization_id=membership.organization_id, role=Role.OWNER)
    if not owners.exclude(pk=membership.pk).exists():
        raise ValidationError(
            {"role": "An organization keeps at least one owner: make someone else owner first."}
        )


def _locked(membership: Membership) -> Membership:
    # The organization's owners locked too: two owners demoting each other at once must not
    # both pass the last-owner check.
    list(
        Membership.objects.select_for_update()
        .filter(organization_id=membership.organization_id, role=Role.OWNER)
        .values_list("pk", flat=True)
    )
    return Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    """Take a person out of an organization.

    After commit their open sockets of it are told (`membership.removed` on `user.<id>`) and
    close; until then, and should the event be lost, every frame re-reads the membership."""
    membership = _locked(membership)
    membership_check_owner_kept(membership=membership)
    user, organization_id = membership.user, membership.organization_id
    membership.delete()
    _sync_staff_flag(user)
    realtime.broadcast_on_commit(
        realtime.user_group(user.pk), "membership.removed", organization_id=organization_id
    )


@transaction.atomic
def membership_set_role(*, membership: Membership, role: str) -> Membership:
    """Give a member another role. Their open sockets of the organization close after commit
    (`membership.role_changed`) and reconnect with the new role."""
    if role not in Role.values:
        raise ValidationError({"role": f"A role is owner, admin or agent, not {role!r}."})
    current = _locked(membership)
    if current.role == role:
        return current
    membership_check_owner_kept(membership=current, role=role)
    current.role = role
    current.save(update_fields=["role"])
    _sync_staff_flag(current.user)
    _tell_sockets_role_changed(current)
    return current


def _tell_sockets_role_changed(membership: Membership) -> None:
    realtime.broadcast_on_commit(
        realtime.user_group(membership.user_id),
        "membership.role_changed",
        organization_id=membership.organization_id,
    )


@transaction.atomic
def user_set_active(*, user: User, is_active: bool) -> User:
    """Deactivate (or reactivate) an account. A deactivated person's sessions stop working at
    their next request (Django's auth) and every member socket they hold closes after commit
    (`user.deactivated`)."""
    user.is_active = is_active
    user.save(update_fields=["is_active"])
    if not is_active:
        realtime.broadcast_on_commit(realtime.user_group(user.pk), "user.deactivated")
    return user


@transaction.atomic
def user_delete(*, user: User) -> None:
    """Delete an account and its memberships; its open member sockets close after commit."""
    user_id = user.pk
    user.delete()
    realtime.broadcast_on_commit(realtime.user_group(user_id), "user.deleted")


def user_set_name(*, user: User, name: str) -> User:
    """The name customers and teammates read for `user` (User.display_name). Messages already
    sent keep the name they were sent with."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Your name can't be empty."})
    try:
        user.name = User._meta.get_field("name").clean(name, user)
    except ValidationError as exc:
        raise ValidationError({"name": exc.messages}) from exc
    user.save(update_fields=["name"])
    return user


def membership_set_gaps_digest(*, membership: Membership, enabled: bool) -> Membership:
    """Whether this member receives the weekly knowledge-gaps e-mail (sent to owners): their
    own choice, from the profile page or the e-mail's unsubscribe link."""
    membership.gaps_digest = enabled
    membership.save(update_fields=["gaps_digest"])
    return membership


@transaction.atomic
def user_onboard(
    *, user: User, organization_name: str = "", invitation: Invitation | None = None
) -> Membership:
    """First sign-in of a new user: join the inviting organization, or found a new one.

    Idempotent: both the e-mail sign-up form and the social sign-up signal call it, and a user
    who already belongs somewhere (and has no invitation) keeps what they have. An invitation
    sent to another address than the user's is left for its owner: the user founds their own.
    """
    if not user.name and user.get_full_name():
        # Google's sign-up gives a first and last name and asks nothing. A name that is not
        # usable leaves display_name's fallback until the person sets one on their profile.
        full_name = " ".join(user.get_full_name().split())
        with contextlib.suppress(ValidationError):
            user_set_name(user=user, name=full_name[: User._meta.get_field("name").max_length])
    if (
        invitation is not None
        and invitation.is_open
        and invitation.email.lower() == user.email.lower()
    ):
        return invitation_accept(invitation=invitation, user=user)
    existing = user.memberships.select_related("organization").first()
    if existing is not None:
        return existing
    name = organization_name.strip() or f"{user.display_name}'s team"
    organization = organization_create(name=name, owner=user)
    return organization.memberships.get(user=user)


def invitation_create(
    *, organization: Organization, email: str, role: str, invited_by: User, name: str = ""
) -> Invitation:
    """Invite `email` to `organization`, or resend the open invitation; mails after commit.
    `name`, when the inviter knows it, greets the invitee and pre-fills their sign-up."""
    email = email.strip().lower()
    try:
        name = Invitation._meta.get_field("name").clean(name.strip(), None)
    except ValidationError as exc:
        raise ValidationError({"name": exc.messages}) from exc
    if role not in (Role.ADMIN, Role.AGENT):
        raise ValidationError({"role": "Invite as an admin or an agent."})
    if organization.memberships.filter(user__email__iexact=email).exists():
        raise ValidationError({"email": f"{email} is already a member of {organization}."})
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .filter(
                organization=organization,
                email=email,
                accepted_at__isnull=True,
                revoked_at__isnull=True,
            )
            .first()
        )
        if invitation is None:
            try:
                with transaction.atomic():
                    invitation = Invitation.objects.create(
                        organization=organization,
                        email=email,
                        name=name,
                        role=role,
                        invited_by=invited_by,
                    )
            except IntegrityError:  # a concurrent invite of the same address won
                invitation = Invitation.objects.get(
                    organization=organization,
                    email=email,
                    accepted_at__isnull=True,
                    revoked_at__isnull=True,
                )
        else:
            # Re-inviting renews the deadline and the role rather than piling up invitations.
            invitation.role = role
            invitation.name = name or invitation.name
            invitation.invited_by = invited_by
            invitation.expires_at = Invitation._meta.get_field("expires_at").default()
            invitation.save(update_fields=["role", "name", "invited_by", "expires_at"])
        transaction.on_commit(lambda: _invitation_send(invitation.pk))
    return invitation


def _invitation_send(invitation_id: int) -> None:
    invitation = Invitation.objects.select_related("organization", "invited_by").get(
        pk=invitation_id
    )
    url = settings.SITE_URL + reverse("invitation_accept", args=[invitation.token])
    context = {"invitation": invitation, "url": url}
    try:
        send_mail(
            subject=f"You're invited to {invitation.organization} on Handoff",
            message=render_to_string("bots/email/invitation.txt", context),
            from_email=None,
            recipient_list=[invitation.email],
        )
    except Exception:
        # The invitation stands; the owner sees it pending and can resend or share the link.
        log.exception("sending invitation %s failed", invitation_id)


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_open:
        raise ValidationError("This invitation has expired or was already used.")
    if invitation.email.lower() != user.email.lower():
        raise ValidationError(
            f"This invitation was sent to {invitation.email}; you are signed in as {user.email}."
        )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    membership = Membership.objects.filter(organization=invitation.organization, user=user).first()
    if membership is None:
        membership = membership_add(
            organization=invitation.organization, user=user, role=invitation.role
        )
    return membership


@transaction.atomic
def invitation_revoke(*, invitation: Invitation) -> None:
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])


@transaction.atomic
def bot_create(*, organization: Organization, name: str, **fields) -> Bot:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "A bot needs a name."})
    bot = Bot(
        organization=organization,
        name=name,
        slug=_unique_slug(Bot, name, organization=organization),
    )
    for field, value in fields.items():
        setattr(bot, field, value)
    bot.full_clean()
    with transaction.atomic():
        bot.save()
        # What floors above add to a new bot (escalation: its default rules) joins this
        # transaction.
        bot_created.send(sender=Bot, bot=bot)
    realtime.broadcast_on_commit(
        realtime.organization_group(organization.pk),
        "bot.created",
        lambda: {"html": _bot_list_html(organization)},
    )
    return bot


def _bot_list_html(organization: Organization) -> str:
    return render_to_string(
        "bots/organization_detail.html#bot-list",
        {"organization": organization, "bots": bot_list(organization=organization), "oob": True},
    )


def membership_set_availability(*, membership: Membership, availability: str) -> Membership:
    """Online, away or offline in the console (agents set away themselves; the console's
    socket sets online and offline)."""
    if availability not in Membership.Availability.values:
        raise ValidationError(f"Availability is online, away or offline, not {availability!r}.")
    membership.availability = availability
    membership.last_seen_at = timezone.now()
    Membership.objects.filter(pk=membership.pk).update(
        availability=availability, last_seen_at=membership.last_seen_at
    )
    return membership


# Open console sockets per membership, in the cache: with REDIS_URL that is shared by every
# process, like the channel layer; without it, one process holds both. A day's expiry clears
# counts a crashed process left behind.
# Keyed by the membership's id and creation time: a database rebuilt from scratch (tests, a
# fresh install sharing a Redis) reuses ids, and must not inherit another's counts.
CONSOLE_SOCKETS_KEY = "console-sockets:{}"
CONSOLE_SOCKETS_TTL = 24 * 3600
# An agent away when their last console closed is away again if it reopens this soon (a
# dropped connection, a reload), rather than suddenly online and taking chats.
CONSOLE_AWAY_KEY = "console-away:{}"
CONSOLE_AWAY_REMEMBERED = 15 * 60


def _console_key(template: str, membership: Membership) -> str:
    return template.format(f"{membership.pk}-{membership.created_at.timestamp():.6f}")


def membership_console_opened(*, membership: Membership) -> Membership:
    """A console socket opened: the member is online, unless they said they are away."""
    from django.core.cache import cache

    key = _console_key(CONSOLE_SOCKETS_KEY, membership)
    cache.add(key, 0, CONSOLE_SOCKETS_TTL)
    cache.incr(key)
    membership.refresh_from_db(fields=["availability"])
    if membership.availability == Membership.Availability.OFFLINE:
        away = cache.get(_console_key(CONSOLE_AWAY_KEY, membership))
        return membership_set_availability(
            membership=membership,
            availability=Membership.Availability.AWAY if away else Membership.Availability.ONLINE,
        )
    Membership.objects.filter(pk=membership.pk).update(last_seen_at=timezone.now())
    return membership


def membership_console_closed(*, membership: Membership) -> Membership:
    """A console socket closed: offline once the member's last console is gone."""
    from django.core.cache import cache

    key = _console_key(CONSOLE_SOCKETS_KEY, membership)
    try:
        left = cache.decr(key)
    except ValueError:  # expired or never counted
        left = 0
    if left <= 0:
        cache.delete(key)
        try:
            membership.refresh_from_db(fields=["availability"])
        except Membership.DoesNotExist:  # removed while the console was open: nobody to mark
            cache.delete(_console_key(CONSOLE_AWAY_KEY, membership))
            return membership
        if membership.availability == Membership.Availability.AWAY:
            cache.set(_console_key(CONSOLE_AWAY_KEY, membership), True, CONSOLE_AWAY_REMEMBERED)
        else:
            cache.delete(_console_key(CONSOLE_AWAY_KEY, membership))
        return membership_set_availability(
            membership=membership, availability=Membership.Availability.OFFLINE
        )
    return membership


@transaction.atomic
def bot_rotate_secret(*, bot: Bot) -> Bot:
    """Give `bot` a new secret key: identity hashes and API calls signed with the old one are
    refused from now on (a key that leaked, or someone who left)."""
    bot.secret_key = Bot._meta.get_field("secret_key").default()
    bot.save(update_fields=["secret_key", "updated_at"])
    return bot
