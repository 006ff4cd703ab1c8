"""Step 2: turn a follow-up into a question that stands on its own, for retrieval.

"and how long does that take?" means nothing to a search index; after "How much does shipping
cost?" it means "how long does shipping take". Offline, a heuristic: a short message that opens
like a follow-up ("and", "what about") or leans on a pronoun ("is it free?") without a subject
of its own borrows the subject words of the customer's previous question. With an LLM, a short
completion rewrites it with the conversation in view; any failure falls back to the heuristic.

Only retrieval sees the rewrite. The answer is written to the customer's own words.
"""

from __future__ import annotations

import re

from conversations.pipeline import llm
from conversations.pipeline.context import Context, timed

MAX_FOLLOW_UP_WORDS = 9
OPENERS = re.compile(
    r"^(?:and|but|also|so|or|then|what about|how about|and what about|what if|same for|"
    r"ok and|okay and|and if|plus)\b"
)
PRONOUNS = {"it", "that", "this", "they", "them", "those", "these", "there", "one", "ones"}
# Words that carry no subject: question words, auxiliaries, generic verbs and fillers.
GENERIC = set(
    """a an the and but or so also then what about how when where why who which whose is are
    was were be been being do does did done doing have has had can could will would should shall
    may might must i you we my your our me us it that this they them those these there one ones
    to of for in on at by with from as if not no yes please thanks thank long much many take takes
    get gets got make makes need want know tell say said ok okay same too more less than any
    some very just really way does there's what's it's how's long hi hello hey""".split()
)
_WORDS = re.compile(r"[\w'-]+")


def content_words(text: str) -> list[str]:
    return [w for w in _WORDS.findall(text.lower()) if w not in GENERIC and len(w) > 1]


def heuristic(text: str, history: list[tuple[str, str]]) -> tuple[str, str]:
    """(query, reason): the message with the previous question's subject words, or as it is."""
    previous = next((t for sender, t in reversed(history) if sender == "user"), "")
    if not previous:
        return text, "no earlier question"
    norm = text.lower().strip()
    words = _WORDS.findall(norm)
    if not words or len(words) > MAX_FOLLOW_UP_WORDS:
        return text, "stands alone"
    opener = bool(OPENERS.match(norm))
    leans = any(w in PRONOUNS for w in words) and len(content_words(norm)) <= 1
    if not (opener or leans):
        return text, "stands alone"
    own = set(content_words(norm))
    borrowed = [w for w in dict.fromkeys(content_words(previous)) if w not in own]
    if not borrowed:
        return text, "nothing to borrow"
    return f"{text.strip()} ({' '.join(borrowed)})", "opener" if opener else "pronoun"


_INSTRUCTIONS = (
    "Rewrite the customer's last message as one standalone question for searching a help "
    "centre, using the conversation for context. Keep the customer's meaning and language. If "
    "it already stands alone, return it unchanged. Reply with the question only."
)


def by_llm(ctx: Context) -> str:
    lines = [f"{sender}: {text}" for sender, text in ctx.turn.history[-6:]]
    context = "\n".join(lines)
    if ctx.turn.summary:
        context = f"Summary of earlier conversation: {ctx.turn.summary}\n{context}"
    messages = [
        {"role": "system", "content": _INSTRUCTIONS},
        {"role": "user", "content": f"{context}\n\nLast message: {ctx.turn.text[:1000]}"},
    ]
    call = llm.Call("rewrite", ctx.llm.model)
    try:
        text = llm.complete(ctx.llm, messages, call, max_tokens=80)
    finally:
        ctx.trace.setdefault("llm_calls", []).append(call.as_trace())
    line = text.strip().splitlines()[0].strip().strip("\"'") if text.strip() else ""
    if not line or len(line) > 500:
        raise llm.LLMError("malformed", "an empty or overlong rewrite")
    return line


def step(ctx: Context) -> str:
    with timed(ctx.trace, "rewrite"):
        text = ctx.turn.text.strip()
        query, reason, method = text, "no history", "none"
        if ctx.turn.history or ctx.turn.summary:
            query, reason = heuristic(text, ctx.turn.history)
            method = "heuristic"
            # The LLM is asked only where context could matter: a long message stands alone.
            if ctx.llm_usable() and len(_WORDS.findall(text)) <= 2 * MAX_FOLLOW_UP_WORDS:
                try:
                    query, reason, method = by_llm(ctx), "", "llm"
                except llm.LLMError as exc:
                    ctx.llm_down = exc.unreachable
                    ctx.trace["rewrite_fallback"] = str(exc)
        ctx.query = query
        ctx.trace.update(
            query=text, rewritten_query=query, rewrite={"method": method, "reason": reason}
        )
    return query
