"""django-q2 tasks: thin wrappers around the chat runner."""

from __future__ import annotations


def turn_recover() -> dict:
    """Every minute (the schedule is created by conversations/migrations/0002_turn_recover.py):
    finish turns that a crash or restart cut off."""
    from conversations.chat import turn_recover as recover

    return recover()
