from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """Project-wide pieces: health, the service checks, `serve`, the realtime broadcast helper."""

    name = "config"
    verbose_name = "Handoff"

    def ready(self) -> None:
        from config import checks  # noqa: F401  (registers the service checks)
