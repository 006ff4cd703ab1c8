from bots.forms import PENDING_INVITATION_KEY, pending_invitation


def onboard_social_signup(sender, request, user, **kwargs):
    """Google sign-ups skip our sign-up form, so they are onboarded here (an organization of
    their own, or the one that invited them). E-mail sign-ups are onboarded by the form."""
    if kwargs.get("sociallogin") is None:
        return
    from bots.services import user_onboard

    invitation = pending_invitation(request)
    request.session.pop(PENDING_INVITATION_KEY, None)
    user_onboard(user=user, invitation=invitation)
