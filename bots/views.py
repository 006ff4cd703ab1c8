"""Signed-in pages of an organization. Thin: selectors scope reads, services write."""

from __future__ import annotations

from allauth.account.views import SignupView as AllauthSignupView
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bots import selectors, services
from bots.forms import (
    PENDING_INVITATION_KEY,
    BotForm,
    InvitationForm,
    OrganizationForm,
    ProfileForm,
    pending_invitation,
)
from bots.models import MANAGER_ROLES, Role


def _require_role(membership, *roles) -> None:
    if membership.role not in roles:
        raise PermissionDenied("Your role in this organization does not allow that.")


def _errors(exc: ValidationError) -> str:
    return " ".join(exc.messages)


@require_GET
def home(request):
    if not request.user.is_authenticated:
        return redirect("account_login")
    organization = selectors.organization_list_for_user(user=request.user).first()
    if organization is not None:
        return redirect("organization_detail", organization.slug)
    return render(request, "bots/no_organization.html", {"form": OrganizationForm()})


@login_required
@require_POST
def organization_create(request):
    form = OrganizationForm(request.POST)
    if not form.is_valid():
        return render(request, "bots/no_organization.html", {"form": form}, status=400)
    organization = services.organization_create(name=form.cleaned_data["name"], owner=request.user)
    return redirect("organization_detail", organization.slug)


@login_required
@require_GET
def organization_detail(request, org):
    membership = selectors.membership_get(user=request.user, organization_slug=org)
    context = {
        "membership": membership,
        "organization": membership.organization,
        "organizations": selectors.organization_list_for_user(user=request.user),
        "bots": selectors.bot_list(organization=membership.organization),
        "form": BotForm(),
    }
    if request.htmx:
        return render(request, "bots/organization_detail.html#bot-list", context)
    return render(request, "bots/organization_detail.html", context)


@login_required
@require_POST
def bot_create(request, org):
    membership = selectors.membership_get(user=request.user, organization_slug=org)
    _require_role(membership, *MANAGER_ROLES)
    form = BotForm(request.POST)
    if form.is_valid():
        try:
            bot = services.bot_create(organization=membership.organization, **form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, _errors(exc))
        else:
            messages.success(request, f"{bot.name} is ready. Add its knowledge next.")
            return redirect("bot_detail", org, bot.slug)
    else:
        messages.error(request, "Check the bot's name and colour.")
    return redirect("organization_detail", org)


@login_required
@require_GET
def bot_detail(request, org, bot):
    membership = selectors.membership_get(user=request.user, organization_slug=org)
    bot = selectors.bot_get(membership=membership, bot_slug=bot)
    return render(
        request,
        "bots/bot_detail.html",
        {"membership": membership, "organization": membership.organization, "bot": bot},
    )


@login_required
@require_GET
def members(request, org):
    membership = selectors.membership_get(user=request.user, organization_slug=org)
    return _members_page(request, membership, InvitationForm())


def _members_page(request, membership, form, status=200):
    organization = membership.organization
    return render(
        request,
        "bots/members.html",
        {
            "membership": membership,
            "organization": organization,
            "members": selectors.membership_list(organization=organization),
            "invitations": selectors.invitation_list_open(organization=organization),
            "roles": Role.choices,
            "form": form,
        },
        status=status,
    )


@login_required
@require_POST
def invitation_create(request, org):
    membership = selectors.membership_get(user=request.user, organization_slug=org)
    _require_role(membership, Role.OWNER)
    form = InvitationForm(request.POST)
    if not form.is_valid():
        return _members_page(request, membership, form, status=400)
    try:
        invitation = services.invitation_create(
            organization=membership.organization,
            invited_by=request.user,
            **form.cleaned_data,
        )
    except ValidationError as exc:
        form.add_error(None, _errors(exc))
        return _members_page(request, membership, form, status=400)
    messages.success(request, f"Invitation sent to {invitation.email}.")
    return redirect("members", org)


@login_required
@require_POST
def invitation_revoke(request, org, invitation_id):
    membership = selectors.membership_get(user=request.user, organization_slug=org)
    _require_role(membership, Role.OWNER)
    invitation = selectors.invitation_get_for_manager(
        membership=membership, invitation_id=invitation_id
    )
    services.invitation_revoke(invitation=invitation)
    messages.success(request, f"Invitation to {invitation.email} revoked.")
    return redirect("members", org)


def _member_for_owner(request, org, member_id):
    """A member of the organization, for its owner (403 for other roles, 404 elsewhere)."""
    membership = selectors.membership_get(user=request.user, organization_slug=org)
    _require_role(membership, Role.OWNER)
    return selectors.membership_get_for_manager(membership=membership, member_id=member_id)


@login_required
@require_POST
def member_set_role(request, org, member_id):
    member = _member_for_owner(request, org, member_id)
    role = request.POST.get("role", "")
    try:
        member = services.membership_set_role(membership=member, role=role)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect("members", org)
    messages.success(
        request, f"{member.user.display_name} is now {member.get_role_display().lower()}."
    )
    if member.user_id == request.user.pk and member.role != Role.OWNER:
        return redirect("organization_detail", org)  # no longer manages the members
    return redirect("members", org)


@login_required
@require_POST
def member_remove(request, org, member_id):
    member = _member_for_owner(request, org, member_id)
    try:
        services.membership_remove(membership=member)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return redirect("members", org)
    messages.success(
        request, f"{member.user.display_name} is no longer a member of {member.organization.name}."
    )
    if member.user_id == request.user.pk:
        return redirect("home")  # left the organization
    return redirect("members", org)


class SignupView(AllauthSignupView):
    """allauth's sign-up page, told of the invitation the visitor followed, if any: it then
    says what they are joining, asks no organization and keeps the invited address."""

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.invitation = pending_invitation(request)

    def get_form_kwargs(self):
        return super().get_form_kwargs() | {"invitation": self.invitation}

    def get_initial(self):
        initial = super().get_initial()
        if self.invitation is not None:
            initial["email"] = self.invitation.email
            if self.invitation.name:
                initial["name"] = self.invitation.name
        return initial

    def get_context_data(self, **kwargs):
        return super().get_context_data(**kwargs) | {"invitation": self.invitation}


signup = SignupView.as_view()


@require_POST
def signup_without_invitation(request):
    """The visitor followed an invitation but wants an account of their own (another address,
    their own organization): forget the invitation in this browser. It stays open for its
    address."""
    request.session.pop(PENDING_INVITATION_KEY, None)
    return redirect("account_signup")


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    """The signed-in person's own profile; there is no way to name anyone else's."""
    user = request.user
    # The weekly knowledge-gaps e-mail goes to owners: one switch per organization they own.
    digests = selectors.memberships_owned(user=user)
    context = {
        "organization": selectors.organization_list_for_user(user=user).first(),
        "digests": digests,
    }
    if request.method == "GET":
        form = ProfileForm(initial={"name": user.display_name})
        return render(request, "bots/profile.html", context | {"form": form})
    if request.POST.get("form") == "gaps_digest":
        chosen = set(request.POST.getlist("gaps_digest"))
        for membership in digests:
            wanted = str(membership.pk) in chosen
            if membership.gaps_digest != wanted:
                services.membership_set_gaps_digest(membership=membership, enabled=wanted)
        messages.success(request, "Your e-mail choices are saved.")
        return redirect("profile")
    form = ProfileForm(request.POST)
    if form.is_valid():
        try:
            services.user_set_name(user=user, name=form.cleaned_data["name"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Your name is now {user.name}.")
            return redirect("profile")
    return render(request, "bots/profile.html", context | {"form": form}, status=400)


@require_http_methods(["GET", "POST"])
def invitation_accept(request, token):
    invitation = selectors.invitation_get_open(token=token)
    if not request.user.is_authenticated:
        # Remembered across sign-up (or sign-in): bots.forms.SignupForm joins this organization.
        request.session[PENDING_INVITATION_KEY] = invitation.token
        return render(request, "bots/invitation_accept.html", {"invitation": invitation})
    if request.method == "POST":
        try:
            services.invitation_accept(invitation=invitation, user=request.user)
        except ValidationError as exc:
            messages.error(request, _errors(exc))
            return render(
                request, "bots/invitation_accept.html", {"invitation": invitation}, status=400
            )
        request.session.pop(PENDING_INVITATION_KEY, None)
        messages.success(request, f"Welcome to {invitation.organization}.")
        return redirect("organization_detail", invitation.organization.slug)
    return render(request, "bots/invitation_accept.html", {"invitation": invitation})
