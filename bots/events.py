"""What bots tells the floors above it, which it never imports (apps import only the
floors below them): Django signals they connect to in their AppConfig.ready()."""

from django.dispatch import Signal

bot_created = Signal()
"""A bot was created, on the site (bots.services.bot_create) or in Django admin. Argument:
`bot`. Sent inside the transaction that saved it, so what receivers write (escalation's
default rules) commits with the bot or not at all."""
