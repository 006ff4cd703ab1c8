"""A turn that calls the business's own systems: the bot's actions (the `actions` app).

Three ways in, one way out:
- the customer answers the question the bot asked last turn ("What's your order number?"):
  `resume` fills the missing argument from the message and runs the action;
- with an LLM, `llm_calls`: OpenAI-style function calling over the bot's action tools. Every
  call the model makes is checked by actions.services.action_run (schema, verification, policy
  limit, confirmation) before anything is sent, its result goes back to the model as a tool
  message, and at most `bot.action_calls_per_turn` calls run: the one past the bound is not
  run and the turn says so. The model sees names, descriptions, schemas and results, never a
  URL or a credential. The customer reads the actions' own rendered results, never the
  model's retelling of them: a result is never invented;
- without an LLM (or when the model called nothing), `offline`: an accepted intent bound to an
  action runs it with the arguments the schema's patterns find in the message; a missing
  required one is asked for.

The step writes nothing. It yields `tool_call` events (running, then done) and leaves in
`ctx.action_calls` what the runner persists (conversations.ActionCall); every call is in the
trace (`actions`: ActionResult.record(), no secrets).
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import asdict, dataclass, field

from actions import selectors as action_selectors
from actions import services as action_services
from actions.models import Action
from actions.services import ActionResult, Outcome
from conversations.pipeline import llm
from conversations.pipeline.answer import Reply
from conversations.pipeline.classify import OFFER_QUESTION
from conversations.pipeline.context import Context, timed
from conversations.pipeline.gate import Gate

MAX_CALLS_PER_TURN = 5  # bots.Bot.action_calls_per_turn is validated 1..5; held here too
DEFAULT_CALLS_PER_TURN = 3
HISTORY = 6
MAX_TOKENS = 300
CANT_CHECK = "I couldn't check that right now."
BOUND_TEXT = (
    "That needs more steps than I can take in one go, so I've stopped here. "
    "A person from our team can finish it."
)
CANCELLED_TEXT = "OK, I won't do that."
_INSTRUCTIONS = """{persona}
You are {bot}, the support assistant of {organization}. You can call functions that look up or \
change the customer's own account with the business's systems.
- Call a function only when the customer's last message asks for what it does.
- Never guess an argument: if one is missing, ask the customer for it instead of calling.
- Each function's result is shown to the customer as it is; do not repeat or change it.
- If no function fits, answer with the single word: NONE."""


@dataclass
class PendingAction:
    """The question the bot asked last turn for a missing argument (an `asking` ActionCall)."""

    call_id: int
    name: str
    arguments: dict
    asked_for: str


@dataclass
class Call:
    """One call of this turn, as the runner persists it (conversations.ActionCall)."""

    action_id: int
    name: str
    arguments: dict
    state: str  # asking, pending_confirmation, done
    outcome: str = ""
    asked_for: str = ""
    confirmation: str = ""
    record: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


# --- Ways in -----------------------------------------------------------------------------------
def resume(ctx: Context) -> Generator[dict, None, Reply | None]:
    """The customer's reply to last turn's question, if it supplies the argument asked for: the
    action runs (or the next missing argument is asked). None when it does not: the turn goes
    on as any other, and the question is dropped."""
    pending = ctx.turn.pending_action
    action = action_selectors.action_get(bot=ctx.bot, name=pending.name)
    if action is None or not action.enabled:
        return None
    found = action_services.action_arguments_from_text(action=action, text=ctx.turn.text)
    if pending.asked_for not in found:
        ctx.trace["action_resume"] = {"name": pending.name, "supplied": False}
        return None
    ctx.trace["action_resume"] = {"name": pending.name, "supplied": True}
    return (yield from _run_or_ask(ctx, action, {**pending.arguments, **found}))


def bound_action(ctx: Context, checked: Gate) -> Action | None:
    """The enabled action bound to the accepted intent, if any, and if the intent is the
    closer match: a passage that answers better wins, as it does over an intent's response
    (gate.step)."""
    match = ctx.evidence.intent
    if match is None or not match.accepted:
        return None
    if checked.decision == "strong" and checked.score is not None and match.nearest < checked.score:
        return None
    action = action_selectors.action_for_intent(bot=ctx.bot, intent=match.tag)
    if action is not None and _changes_something(action):
        # An action that changes something (a refund) starts offline only from a message that
        # names what it acts on ("refund $30 on order 1235"). Without an LLM, "What is your
        # refund policy?" lands on the same intent as a request, and asking that customer for
        # an order number would answer a question they did not ask: the knowledge answers.
        if not action_services.action_arguments_from_text(action=action, text=ctx.turn.text):
            ctx.trace["action_binding"] = {
                "intent": match.tag,
                "action": action.name,
                "skipped": "the message names nothing for it to act on",
            }
            return None
    return action


def _changes_something(action: Action) -> bool:
    return action.requires_confirmation or action.method != "GET"


def offline(ctx: Context, action: Action) -> Generator[dict, None, Reply]:
    arguments = action_services.action_arguments_from_text(action=action, text=ctx.turn.text)
    ctx.trace["action_binding"] = {"intent": ctx.evidence.intent.tag, "action": action.name}
    return (yield from _run_or_ask(ctx, action, arguments))


def calls_per_turn(bot) -> int:
    bound = getattr(bot, "action_calls_per_turn", None) or DEFAULT_CALLS_PER_TURN
    return max(1, min(MAX_CALLS_PER_TURN, int(bound)))


def llm_calls(ctx: Context) -> Generator[dict, None, Reply | None]:
    """Function calling, bounded. None when the model called nothing (or failed before any
    call ran): the offline binding and the knowledge answer it then, as they would without an
    LLM."""
    tools = action_selectors.action_tools(bot=ctx.bot)
    if not tools:
        return None
    bound = calls_per_turn(ctx.bot)
    messages = _prompt(ctx)
    results: list[ActionResult] = []
    ran = 0
    with timed(ctx.trace, "actions"):
        while True:
            call = llm.Call("actions", ctx.llm.model)
            try:
                content, requested = llm.complete_tools(
                    ctx.llm, messages, tools, call, max_tokens=MAX_TOKENS
                )
            except llm.LLMError as exc:
                ctx.llm_down = exc.unreachable
                ctx.trace["actions_fallback"] = str(exc)
                break
            finally:
                ctx.trace.setdefault("llm_calls", []).append(call.as_trace())
            if not requested:
                if content:
                    ctx.trace["actions_model_text"] = content[:500]
                break
            messages.append(_assistant_calls(requested))
            for call_id, name, raw in requested:
                if ran >= bound:
                    # Not run: the model asked for more than a turn may do.
                    ctx.trace.setdefault("actions", []).append(
                        {"name": name, "outcome": "not_run", "error": f"bound of {bound} calls"}
                    )
                    ctx.trace["actions_bound"] = bound
                    return _bounded(ctx, results)
                ran += 1
                result = yield from _checked_call(ctx, name, raw)
                if result is not None:
                    results.append(result)
                messages.append(_tool_message(call_id, result, name))
                if result is not None and result.outcome not in (Outcome.OK, Outcome.INVALID):
                    # Confirmation, sign-in, a person, a failure: the customer's turn now.
                    return reply_for(result, ctx.trace)
    return _summary(ctx, results)


# --- Running and replying ------------------------------------------------------------------------
def _run_or_ask(ctx: Context, action: Action, arguments: dict) -> Generator[dict, None, Reply]:
    missing = action_services.action_missing(action=action, arguments=arguments)
    if missing:
        asked = missing[0]
        ctx.action_calls.append(Call(action.pk, action.name, arguments, "asking", asked_for=asked))
        ctx.trace.setdefault("actions", []).append(
            {"name": action.name, "arguments": arguments, "outcome": "asking", "asked": asked}
        )
        return Reply(
            action_services.action_question(action=action, field=asked), "answered", "action"
        )
    result = yield from run_call(ctx, action, arguments)
    return reply_for(result, ctx.trace)


def run_call(
    ctx: Context, action: Action, arguments: dict, *, confirmed: bool = False
) -> Generator[dict, None, ActionResult]:
    """One call through action_run, announced before (the widget's "Checking your order…")
    and reported after; recorded in the trace and in ctx.action_calls."""
    yield running_event(action, arguments)
    with timed(ctx.trace, "actions"):
        result = action_services.action_run(
            action=action,
            arguments=arguments,
            user_id=ctx.turn.user_id,
            confirmed=confirmed,
            idempotency_key=_idempotency_key(ctx, action),
        )
    record = result.record()
    ctx.trace.setdefault("actions", []).append(record)
    if result.outcome == Outcome.FAILED:
        ctx.trace["action_failed"] = True
    waiting = result.outcome == Outcome.NEEDS_CONFIRMATION
    ctx.action_calls.append(
        Call(
            action.pk,
            action.name,
            result.arguments,
            "pending_confirmation" if waiting else "done",
            outcome=result.outcome,
            confirmation=result.confirmation if waiting else "",
            record=record,
        )
    )
    yield done_event(result)
    return result


def _idempotency_key(ctx: Context, action: Action) -> str | None:
    """The same for the same call when the turn runs again (chat.recovery retries a turn a
    crash cut off, and its POSTs that need no confirmation would run twice): made of the
    customer's message and the call's place among this action's calls in the turn,
    "msg-<message id>-<action>-<n>". Counted per action, not per turn: a model that, on the
    retry, looks the order up after the refund instead of before still sends the refund's
    first key. None without a stored message (a draft, a test turn): nothing to repeat."""
    n = ctx.action_counts[action.name] = ctx.action_counts.get(action.name, 0) + 1
    if ctx.turn.message_id is None:
        return None
    return f"msg-{ctx.turn.message_id}-{action.name}-{n}"


def running_event(action: Action, arguments: dict) -> dict:
    return {
        "type": "tool_call",
        "state": "running",
        "name": action.name,
        "arguments": arguments,
        "progress": action.progress_text,
    }


def done_event(result: ActionResult) -> dict:
    return {
        "type": "tool_call",
        "state": "done",
        "name": result.action.name,
        "arguments": result.arguments,
        "outcome": result.outcome,
        "progress": "",
    }


def reply_for(result: ActionResult, trace: dict) -> Reply:
    """What the customer reads after a call: its own text (the rendered template, the
    confirmation summary, the sign-in request), with a person offered or brought in where the
    call could not do it."""
    name = result.action.name
    outcome = result.outcome
    if outcome == Outcome.HANDOFF:
        # For the handoff package: what the customer asked for, and why a person decides.
        trace["action_handoff"] = {
            "name": name,
            "arguments": result.arguments,
            "reason": result.handoff_reason,
        }
        return Reply(
            result.text,
            "handoff",
            "action",
            handoff=True,
            handoff_reason=result.handoff_reason or f"The action {name} needs a person",
            priority="high",
        )
    if outcome in (Outcome.FAILED, Outcome.NOT_FOUND, Outcome.INVALID):
        text = result.text or CANT_CHECK  # action_run's words are the customer's to read
        return Reply(
            f"{text} A person from our team can help with it. {OFFER_QUESTION}",
            "handoff_proposed",
            "action",
            offer_human=True,
            handoff_reason=f"The action {name} did not work ({result.error or outcome})",
            priority="medium",
            requires_followup=True,
        )
    return Reply(result.text, "answered", "action")


def _checked_call(ctx: Context, name: str, raw: str) -> Generator[dict, None, ActionResult | None]:
    """A call the model asked for: an unknown or disabled action, or arguments that are not a
    JSON object, is refused here (the model is told); the rest goes through action_run, which
    checks the schema, the customer's verification and the policy before any request."""
    action = action_selectors.action_get(bot=ctx.bot, name=name)
    if action is None or not action.enabled:
        ctx.trace.setdefault("actions", []).append(
            {"name": name[:64], "outcome": "invalid", "error": "no such action"}
        )
        return None
    try:
        arguments = json.loads(raw or "{}")
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        ctx.trace.setdefault("actions", []).append(
            {"name": name, "outcome": "invalid", "error": "arguments are not a JSON object"}
        )
        return None
    return (yield from run_call(ctx, action, arguments))


def _bounded(ctx: Context, results: list[ActionResult]) -> Reply:
    done = [r.text for r in results if r.outcome == Outcome.OK and r.text]
    return Reply(
        "\n\n".join([*done, f"{BOUND_TEXT} {OFFER_QUESTION}"]),
        "handoff_proposed",
        "action",
        offer_human=True,
        handoff_reason="The bot reached its limit of action calls in one turn",
        priority="medium",
        requires_followup=True,
    )


def _summary(ctx: Context, results: list[ActionResult]) -> Reply | None:
    if not results and not ctx.trace.get("actions"):
        return None  # the model called nothing: the rest of the pipeline answers
    done = [r.text for r in results if r.outcome == Outcome.OK and r.text]
    if done:
        return Reply("\n\n".join(done), "answered", "action")
    # Only refused calls (a schema the model could not meet): never an invented result.
    return Reply(
        f"{CANT_CHECK} A person from our team can help with it. {OFFER_QUESTION}",
        "handoff_proposed",
        "action",
        offer_human=True,
        handoff_reason="The bot's action calls were refused",
        priority="medium",
        requires_followup=True,
    )


# --- The model's messages ------------------------------------------------------------------------
def _prompt(ctx: Context) -> list[dict]:
    system = _INSTRUCTIONS.format(
        persona=ctx.bot.persona.strip(),
        bot=ctx.bot.name,
        organization=ctx.bot.organization.name,
    )
    return ctx.chat_messages(system, history=HISTORY)


def _assistant_calls(requested: list[tuple[str, str, str]]) -> dict:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": raw}}
            for call_id, name, raw in requested
        ],
    }


def _tool_message(call_id: str, result: ActionResult | None, name: str) -> dict:
    """What the model learns of a call: its outcome and the customer-facing text, or why it
    was refused. No URL, status line or header: those stay with Handoff."""
    if result is None:
        content = {"outcome": "invalid", "error": f"{name} is not a function you can call"}
    else:
        content = {"outcome": result.outcome, "result": result.text}
        if result.outcome == Outcome.INVALID:
            content["error"] = result.error
    return {"role": "tool", "tool_call_id": call_id, "content": json.dumps(content)}


def cancelled_reply() -> Reply:
    return Reply(CANCELLED_TEXT, "answered", "action")
