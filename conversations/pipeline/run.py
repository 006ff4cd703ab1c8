"""The answering pipeline, step by step: classify → rewrite → retrieve → gate → answer → check
→ route. Each step is a small module that records what it saw and decided in the trace.

The pipeline reads the bot's knowledge and writes nothing: the chat runner persists what it
yields. It yields zero or more {"type": "token"} events, whose texts add up to the final text,
then exactly one {"type": "final"} event. An LLM failure never escapes (every LLM step falls
back); only programming errors, and a database that is down, raise.

Outcomes: answered, clarified (a clarifying question, for gibberish), deflected (off-topic),
low_confidence (a hedged answer from weak evidence), handoff_proposed (a person is offered: also
the out-of-scope reply, category out_of_scope, which says the knowledge does not cover the
question), handoff (a person takes over). `requires_followup` marks a turn a person should look
at later even though no one was handed the conversation: a hedged answer, an unanswered question
the knowledge may be missing, an offered hand-off, an answer cut short.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

from conversations.pipeline import (
    actions,
    answer,
    catalog,
    classify,
    gate,
    generate,
    retrieve,
    rewrite,
)
from conversations.pipeline.answer import Reply
from conversations.pipeline.context import Context, Turn, timed
from conversations.pipeline.guardrails import Guard
from conversations.pipeline.llm import llm_config


def run(turn: Turn) -> Iterator[dict]:
    ctx = Context(turn=turn, llm=llm_config(turn.bot))
    bot = turn.bot
    ctx.trace["model"] = ctx.llm.model if ctx.llm is not None else None
    if turn.pending_action is not None and turn.actions:
        # The answer to the bot's own question ("What's your order number?") is not a new
        # question to classify: it completes the action, unless it does not supply the value.
        ctx.trace.update(category="action", query=turn.text.strip())
        reply = yield from _action_turn(ctx, actions.resume(ctx))
        if reply is not None:
            yield _final(ctx, reply, ctx.action_guard)
            return
        del ctx.trace["category"]
    version = catalog.knowledge_version(bot)
    topics = catalog.catalog(bot, version)
    result = classify.step(ctx, topics.vocabulary)
    acting = turn.actions and result.category not in ("nonsense", "human", "greeting")
    if acting and ctx.llm_usable():
        reply = yield from _action_turn(ctx, actions.llm_calls(ctx))
        if reply is not None:
            yield _final(ctx, reply, ctx.action_guard)
            return

    checked = gate.Gate("skipped")
    if result.category in ("nonsense", "human", "greeting"):
        ctx.query = turn.text.strip()  # nothing to resolve against the conversation
        ctx.trace.update(query=ctx.query, rewritten_query=ctx.query)
    else:
        rewrite.step(ctx)
    if result.category == "greeting":
        # Only the intents matter: the bot's own words for hello and thanks, if it has them.
        retrieve.step(ctx, search_knowledge=False)
    elif result.category not in ("nonsense", "human"):
        retrieve.step(ctx)
        checked = gate.step(ctx, version)
        classify.refine(ctx, gate=checked.decision, knowledge_similarity=_similarity(ctx))

    suggestions = catalog.suggestions(bot, version)
    guard = Guard(
        forbidden=bot.forbidden_phrase_list,
        allowed_from=turn.customer_texts() + [h.text for h in ctx.evidence.passages],
        sources=len(checked.sources) if checked.decision == "strong" else 1,
    )
    bound = actions.bound_action(ctx, checked) if acting else None
    if bound is not None:
        reply = yield from _action_turn(ctx, actions.offline(ctx, bound))
        yield _final(ctx, reply, ctx.action_guard)
        return
    with timed(ctx.trace, "answer"):
        reply = yield from _first_token(ctx, _respond(ctx, checked, suggestions, guard))
    yield _final(ctx, reply, guard)


def _action_turn(ctx: Context, steps: Generator[dict, None, Reply | None]):
    """An action's reply, checked by the guardrails like any answer (redaction of data the
    customer did not give, the bot's forbidden phrases) and shipped as one token; None when
    the step did not answer."""
    ctx.action_guard = Guard(
        forbidden=ctx.bot.forbidden_phrase_list, allowed_from=ctx.turn.customer_texts(), sources=1
    )
    with timed(ctx.trace, "answer"):
        reply = yield from _first_token(ctx, steps)
        if reply is None:
            return None
        return (yield from _first_token(ctx, answer.emit(ctx, reply, ctx.action_guard)))


def _similarity(ctx: Context) -> float:
    """How close the question came to anything the bot knows (passages or intent patterns)."""
    hits = ctx.evidence.passages[:1] + (
        [ctx.evidence.top_pattern] if ctx.evidence.top_pattern else []
    )
    return max((h.dense for h in hits), default=0.0)


def _respond(
    ctx: Context, checked: gate.Gate, suggestions: list[str], guard: Guard
) -> Generator[dict, None, Reply]:
    category, subtype = ctx.classification.category, ctx.classification.subtype
    if category == "human" and ctx.classification.method == "embeddings":
        reply = answer.offer_person()
    elif category == "human":
        reply = answer.human(subtype)
    elif category == "high_stakes":
        # Fixed, reviewed words rather than a model's: these are the conversations where a
        # wrong promise costs most. The knowledge still helps where it clearly applies.
        reply = answer.high_stakes(ctx, subtype, checked)
    elif category == "greeting":
        reply = answer.greeting(ctx, subtype)
    elif category == "nonsense":
        reply = answer.nonsense(suggestions)
    elif category == "irrelevant":
        reply = answer.irrelevant(ctx, suggestions)
    elif checked.decision == "unavailable":
        reply = answer.unavailable()
    elif checked.decision == "intent":
        reply = answer.intent(ctx, cite=True)
    elif checked.decision == "strong" and ctx.llm_usable():
        return (yield from generate.llm_answer(ctx, checked, guard))
    elif checked.decision == "strong":
        reply = answer.extractive(ctx, checked.best, round(checked.score, 4))
    elif checked.decision == "weak":
        # Extractive even with an LLM: a fluent paraphrase of weak evidence would sound surer
        # than the evidence is.
        reply = answer.weak(ctx, checked.best, round(checked.score, 4))
    else:
        # Nothing good enough: no passage passed the gate and no intent was accepted (a near
        # miss the intent classifier rejected lands here too). Gibberish and chit-chat were
        # sorted out above; this is a real question the knowledge does not cover.
        ctx.classification.category = "out_of_scope"
        ctx.trace["category"] = "out_of_scope"
        reply = answer.out_of_scope(suggestions, again=answer.missed_before(ctx.turn.history))
    return (yield from answer.emit(ctx, reply, guard))


def _first_token(ctx: Context, steps: Generator[dict, None, Reply]) -> Generator[dict, None, Reply]:
    """Pass the answer's tokens on, noting when the first one left."""
    reply = None
    try:
        while True:
            event = next(steps)
            if event["type"] == "token":
                ctx.trace["timings_ms"].setdefault("first_token", ctx.elapsed_ms())
            yield event
    except StopIteration as stop:
        reply = stop.value
    return reply


def _final(ctx: Context, reply: Reply, guard: Guard) -> dict:
    trace = ctx.trace
    trace["answer_method"] = reply.method
    trace["outcome"] = reply.outcome
    trace["guardrails"] = guard.record()
    trace.setdefault("fallback", None)
    # Steps that did not run (nothing to look up for gibberish or a request for a person).
    trace.setdefault("retrieved", [])
    trace.setdefault("intent", None)
    trace.setdefault("gate", {"decision": "skipped"})
    calls = trace.get("llm_calls", [])
    trace["tokens"] = {
        "prompt": sum(c.get("prompt_tokens") or 0 for c in calls),
        "completion": sum(c.get("completion_tokens") or 0 for c in calls),
    }
    for step in ("classify", "rewrite", "retrieve", "gate", "answer"):
        trace["timings_ms"].setdefault(step, 0.0)  # a step that did not run took no time
    trace["timings_ms"]["total"] = ctx.elapsed_ms()
    return {
        "type": "final",
        "text": reply.text,
        "outcome": reply.outcome,
        "confidence": reply.confidence,
        "citations": reply.citations,
        "extras": {
            "suggestions": reply.suggestions,
            "disclaimer": reply.disclaimer,
            "offer_human": reply.offer_human,
        },
        "requires_followup": reply.requires_followup,
        "handoff": reply.handoff,
        "handoff_reason": reply.handoff_reason[:200],
        "priority": reply.priority,
        # The turn's action calls, for the runner to persist (conversations.ActionCall).
        "actions": [call.as_dict() for call in ctx.action_calls],
        "trace": trace,
    }
