"""django-q2 tasks: thin wrappers around the chat runner's recovery."""

from __future__ import annotations

from chat.recovery import turn_recover as recover


def turn_recover() -> dict:
    """Every minute (the schedule is created by conversations/migrations/0002_turn_recover.py,
    its path moved by chat/migrations/0001_turn_recover_task_path.py): finish turns that a
    crash or restart cut off."""
    return recover()
