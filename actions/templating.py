"""The admin's templates (the result, the confirmation) run in Jinja2's sandbox: an admin writes
them, and the values come from the business's response and the customer's message, so a
template may read data but never reach Python's internals. StrictUndefined: a field the
response lacks fails the call instead of showing the customer a blank ("arriving ").
"""

from __future__ import annotations

from functools import lru_cache

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Rendered text longer than this is cut: it is a chat message, not a page.
MAX_TEXT_CHARS = 2000

_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def template_parse(source: str) -> None:
    """Raises jinja2.TemplateSyntaxError for a template that does not parse."""
    _env.parse(source)


@lru_cache(maxsize=512)
def _compiled(source: str):
    # Compiling is most of a render's time (about 1.7 ms of an action turn's); an action's
    # templates change only when an admin saves it, and a changed source is another key.
    return _env.from_string(source)


def template_render(source: str, context: dict) -> str:
    """Raises jinja2's errors (UndefinedError, SecurityError, …) for the caller to report."""
    text = _compiled(source).render(context).strip()
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1] + "…"
