from __future__ import annotations

from allauth.account.adapter import get_adapter
from django import forms

from bots.models import PERSON_NAME_MAX_LENGTH, Bot, Invitation, Role, validate_person_name

PENDING_INVITATION_KEY = "pending_invitation"


def pending_invitation(request) -> Invitation | None:
    token = request.session.get(PENDING_INVITATION_KEY)
    if not token:
        return None
    invitation = Invitation.objects.select_related("organization").filter(token=token).first()
    return invitation if invitation and invitation.is_open else None


def _name_field(**kwargs) -> forms.CharField:
    options = {
        "label": "Your name",
        "max_length": PERSON_NAME_MAX_LENGTH,
        "validators": [validate_person_name],
        "widget": forms.TextInput(attrs={"placeholder": "Sam Rivera", "autocomplete": "name"}),
        "help_text": "Customers read it in the chat; your teammates in the console.",
    }
    return forms.CharField(**(options | kwargs))


class SignupForm(forms.Form):
    """Extra fields on allauth's sign-up form: the new user's name and organization.

    Someone who arrived through an invitation (bots.views.SignupView passes it) joins the
    inviting organization with the invited address: no organization field, the address locked.
    """

    field_order = ["name", "email", "password1", "password2", "organization_name"]

    name = _name_field()
    organization_name = forms.CharField(
        label="Organization",
        max_length=120,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "Acme Inc.", "autocomplete": "organization"}),
        help_text="Your company or team. You can invite agents once you're in.",
    )

    def __init__(self, *args, invitation: Invitation | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.invitation = invitation
        if invitation is not None:
            del self.fields["organization_name"]
            if "email" in self.fields:
                self.fields["email"].widget.attrs["readonly"] = True

    def clean(self):
        cleaned_data = super().clean()
        email = cleaned_data.get("email")
        if self.invitation is not None and email and email.lower() != self.invitation.email:
            self.add_error(
                "email",
                f"This invitation is for {self.invitation.email}. To sign up with another "
                "address, sign up without the invitation.",
            )
        return cleaned_data

    def signup(self, request, user) -> None:
        from bots.services import user_onboard, user_set_name

        user_set_name(user=user, name=self.cleaned_data["name"])
        invitation = pending_invitation(request)
        request.session.pop(PENDING_INVITATION_KEY, None)
        if invitation is not None and invitation.email == user.email.lower():
            # The link in the invitation e-mail proved the address. allauth sets up the
            # user's addresses after this method and marks a stashed one verified and
            # primary, so it sends no "confirm your e-mail" message.
            get_adapter(request).stash_verified_email(request, user.email)
        user_onboard(
            user=user,
            organization_name=self.cleaned_data.get("organization_name", ""),
            invitation=invitation,
        )


class ProfileForm(forms.Form):
    name = _name_field()


class InvitationForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"placeholder": "sam@example.com"}))
    name = _name_field(
        label="Name (optional)",
        required=False,
        help_text="Greets them in the invitation and fills in their sign-up; they can change it.",
    )
    role = forms.ChoiceField(choices=[(Role.AGENT, "Agent"), (Role.ADMIN, "Admin")])


class BotForm(forms.ModelForm):
    class Meta:
        model = Bot
        fields = ["name", "greeting", "colour"]
        widgets = {"colour": forms.TextInput(attrs={"type": "color"})}


class OrganizationForm(forms.Form):
    name = forms.CharField(max_length=120)
