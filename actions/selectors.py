"""Reads of a bot's actions. The turn asks for the enabled ones only: a disabled action is not
offered to the model, not bound to an intent, and not found by name."""

from __future__ import annotations

from actions.models import Action
from bots.models import Bot


def action_tools(*, bot: Bot) -> list[dict]:
    """The enabled actions as OpenAI-style tools: what the model may call, in its words (name,
    description, parameters). Never the URL, the method or the secret: the model does not need
    them and a prompt injection must not be able to read them back."""
    return [
        {
            "type": "function",
            "function": {
                "name": action.name,
                "description": action.description,
                "parameters": action.input_schema,
            },
        }
        for action in Action.objects.filter(bot=bot, enabled=True).order_by("name")
    ]


def action_get(*, bot: Bot, name: str) -> Action | None:
    """The enabled action `name` of `bot`, or None (a model may call a name it made up)."""
    return Action.objects.filter(bot=bot, name=name, enabled=True).select_related("bot").first()


def action_for_intent(*, bot: Bot, intent: str) -> Action | None:
    """The enabled action bound to `intent`, or None."""
    if not intent:
        return None
    return (
        Action.objects.filter(bot=bot, intent=intent, enabled=True)
        .select_related("bot")
        .order_by("name")
        .first()
    )
