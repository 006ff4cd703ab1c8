"""django-q2 tasks: thin; the logic is in conversations/services/outcomes.py."""

from __future__ import annotations

from conversations.services.outcomes import conversations_close_expired, conversations_close_idle


def conversations_close_inactive() -> dict:
    """Every minute (conversations/migrations/0006_outcome_schedule.py): conversations the
    customer left after the bot's answer are ended (resolved by the bot, or abandoned), and
    resolved ones past their reopen window are closed."""
    return {"idle": conversations_close_idle(), "expired": conversations_close_expired()}
