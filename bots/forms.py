from __future__ import annotations

from django import forms

from bots.models import Bot, Invitation, Role

PENDING_INVITATION_KEY = "pending_invitation"


def pending_invitation(request) -> Invitation | None:
    token = request.session.get(PENDING_INVITATION_KEY)
    if not token:
        return None
    invitation = Invitation.objects.select_related("organization").filter(token=token).first()
    return invitation if invitation and invitation.is_open else None


class SignupForm(forms.Form):
    """Extra field on allauth's sign-up form: the new user's organization.

    Left out for someone who arrived through an invitation: they join the inviting organization.
    """

    organization_name = forms.CharField(
        label="Organization",
        max_length=120,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "Acme Inc.", "autocomplete": "organization"}),
        help_text="Your company or team. You can invite agents once you're in.",
    )

    def signup(self, request, user) -> None:
        from bots.services import user_onboard

        invitation = pending_invitation(request)
        request.session.pop(PENDING_INVITATION_KEY, None)
        user_onboard(
            user=user,
            organization_name=self.cleaned_data.get("organization_name", ""),
            invitation=invitation,
        )


class InvitationForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"placeholder": "sam@example.com"}))
    role = forms.ChoiceField(choices=[(Role.AGENT, "Agent"), (Role.ADMIN, "Admin")])


class BotForm(forms.ModelForm):
    class Meta:
        model = Bot
        fields = ["name", "greeting", "colour"]
        widgets = {"colour": forms.TextInput(attrs={"type": "color"})}


class OrganizationForm(forms.Form):
    name = forms.CharField(max_length=120)
