from django.apps import AppConfig


class BotsConfig(AppConfig):
    name = "bots"
    verbose_name = "Organizations and bots"

    def ready(self) -> None:
        from allauth.account.signals import user_signed_up

        from bots.signals import onboard_social_signup

        user_signed_up.connect(onboard_social_signup, dispatch_uid="bots.onboard_social_signup")
