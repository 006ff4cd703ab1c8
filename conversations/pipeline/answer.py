"""Step 5 without an LLM: answers quoted from the knowledge, and the fixed replies (greetings,
deflections, clarifying questions, out-of-scope replies, hand-offs).

The extractive answer is the matched intent's response, or the best passage trimmed to the
sentences that share the most words with the question (1-3 sentences; for an FAQ its answer,
without the question), followed by its source. It ships whole, as one token: it is ready at
once and there is nothing to hold back.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Generator
from dataclasses import dataclass, field

from bots.models import Bot
from config.links import safe_http_url
from conversations.pipeline.classify import OFFER_QUESTION, greeting_kind
from conversations.pipeline.context import Context
from conversations.pipeline.guardrails import Guard
from conversations.pipeline.rewrite import content_words
from knowledge.help_pages import PATH_SEPARATOR
from knowledge.retrieval import Hit
from knowledge.selectors import citation_target

MAX_SENTENCES = 3
MAX_CHARS = 420
WEAK_DISCLAIMER = (
    "I couldn't find an exact answer to this, so the information below may not fully match "
    "your question."
)
HANDOFF_TEXT = (
    "I'll connect you with a person. Someone from our team will join this conversation shortly."
)
BLOCKED_TEXT = (
    "I'd like a colleague to answer this one properly, so I'm connecting you with a person now."
)
EMPATHY = {
    "cancellation": "I'm sorry to hear you're thinking of leaving.",
    "billing_dispute": "I'm sorry about the trouble with this charge; let's get it sorted.",
    "security": "I'm sorry, that sounds worrying. Keeping your account safe comes first.",
    "legal": "I understand this is a serious matter.",
    "complaint": "I'm really sorry about your experience. That's not what we want for you.",
}
OUT_OF_SCOPE = "Sorry, I don't have information about that, and I'd rather not guess."
OUT_OF_SCOPE_AGAIN = "I'm afraid I don't have information about that either."
# Suggestions under an out-of-scope reply: a couple, beside the offer of a person, not a menu.
OUT_OF_SCOPE_CHIPS = 2
# Security and legal matters get the fastest response: harm may be ongoing, deadlines legal.
PRIORITY = {"security": "urgent", "legal": "urgent"}


@dataclass
class Reply:
    text: str
    outcome: str
    method: str  # extractive, intent, llm, template
    confidence: float | None = None
    citations: list[dict] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    disclaimer: str = ""
    offer_human: bool = False
    handoff: bool = False
    handoff_reason: str = ""
    priority: str | None = None
    requires_followup: bool = False


def citation(n: int, hit: Hit, bot: Bot | None = None, quoted: str = "") -> dict:
    """A source as the widget lists it. `url` is the document's own address (may be empty);
    `heading` the section the quote (else the chunk) comes from; `link` where a click goes:
    the document's page at that heading, or, for an uploaded document, its public help page
    at the section's anchor (knowledge/help_pages.py)."""
    if bot is not None:
        link, heading = citation_target(
            bot=bot,
            document_id=hit.document_id,
            heading=hit.heading,
            text=quoted or hit.text,
            url=hit.url,
        )
    else:
        link, heading = safe_http_url(hit.url), hit.heading.split(PATH_SEPARATOR)[-1]
    cited = {
        "n": n,
        "chunk_id": hit.chunk_id,
        "document_id": hit.document_id,
        "title": hit.title,
        "url": hit.url,
        "heading": heading.strip(),
        "link": link,
    }
    if hit.source:
        cited["source"] = hit.source  # "Answers from the team": the widget names it
    return cited


def passage_text(hit: Hit) -> str:
    """A chunk's text as a customer should read it: an FAQ chunk without its question."""
    text = hit.text.strip()
    if hit.kind == "faq" and text.startswith("Q: ") and "\nA: " in text:
        text = text.split("\nA: ", 1)[1]
    return text.strip()


_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d{1,3}[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[a-z0-9%)\]\"'”][.!?])\s+(?=[A-Z0-9\"“(])")
_LEANS_BACK = re.compile(r"^(?:it|this|that|these|those|they|however|but|also|then)\b", re.I)


def units(text: str) -> list[tuple[str, bool]]:
    """A passage as (unit, is_list_item): list items whole, paragraphs (hard-wrapped lines
    joined) split into sentences."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if lines and all(_LIST_ITEM.match(line) for line in lines):
            out.extend((line, True) for line in lines)
        elif lines:
            out.extend((s, False) for s in _SENTENCE_END.split(" ".join(lines)) if s.strip())
    return out


def excerpt(hit: Hit, query: str) -> str:
    """The 1-3 sentences (or list items) of the passage that share the most words with the
    question, in their original order."""
    text = passage_text(hit)
    parts = units(text)
    if not parts:
        return text
    if len(parts) > MAX_SENTENCES or len(text) > MAX_CHARS:
        wanted = {_stem(w) for w in content_words(query)}
        overlap = [len(wanted & {_stem(w) for w in content_words(u)}) for u, _ in parts]
        start = max(range(len(parts)), key=lambda i: (overlap[i], -i))
        if start and _LEANS_BACK.match(parts[start][0]) and not parts[start - 1][1]:
            start -= 1  # "It does not cover..." needs the sentence it refers to
        chosen = [parts[start]]
        for part in parts[start + 1 : start + MAX_SENTENCES]:
            if sum(len(u) for u, _ in chosen) + len(part[0]) > MAX_CHARS:
                break
            chosen.append(part)
        parts = chosen
    joined = parts[0][0]
    for (_, was_item), (unit, is_item) in zip(parts, parts[1:], strict=False):
        joined += ("\n" if was_item or is_item else " ") + unit
    return joined


def _stem(word: str) -> str:
    return re.sub(r"(?:ing|ed|es|s)$", "", word) if len(word) > 4 else word


def source_line(hit: Hit) -> str:
    return f"Source: {hit.title}" + (f" ({hit.url})" if hit.url else "")


def extractive(ctx: Context, hit: Hit, confidence: float | None) -> Reply:
    quote = excerpt(hit, ctx.query)
    text = f"{quote}\n\n{source_line(hit)}"
    cited = citation(1, hit, ctx.bot, quote)
    return Reply(text, "answered", "extractive", confidence, citations=[cited])


def weak(ctx: Context, hit: Hit, confidence: float | None) -> Reply:
    """Related, not clearly the answer: said with a hedge and without a source to lean on."""
    return Reply(
        f"I'm not completely sure, but this may help: {excerpt(hit, ctx.query)}",
        "low_confidence",
        "extractive",
        confidence,
        disclaimer=WEAK_DISCLAIMER,
        requires_followup=True,
    )


def pick(responses: list[str], text: str) -> str:
    """One of an intent's responses: varied across messages, stable for the same message."""
    return responses[int(hashlib.sha1(text.encode()).hexdigest(), 16) % len(responses)]


def intent(ctx: Context, *, cite: bool = False) -> Reply:
    """The matched intent's response. With `cite`, an answer to a question, it names its source
    like a quoted passage does; a greeting's "You're welcome!" needs none."""
    evidence = ctx.evidence
    text = pick(evidence.intent_responses, ctx.turn.text)
    confidence = round(evidence.intent.confidence, 4)
    if not cite:
        return Reply(text, "answered", "intent", confidence)
    title = evidence.intent_title
    if title and " " not in title:
        title = title.replace("_", " ").replace("-", " ").capitalize()  # a tag: opening_hours
    # The source's name is often just the uploaded file's ("intents.json"): not for customers.
    title = title or evidence.intent_source
    pattern = evidence.top_pattern
    source = {
        "n": 1,
        # The pattern that matched, when the search found it: citations point to chunks.
        "chunk_id": pattern.chunk_id
        if pattern is not None and pattern.document_id == evidence.intent.document_id
        else None,
        "document_id": evidence.intent.document_id,
        "title": title,
        "url": evidence.intent_url,
        "heading": "",
        # Intents have no help page: their patterns are what customers type, not help text.
        "link": safe_http_url(evidence.intent_url),
    }
    line = f"Source: {title}" + (f" ({evidence.intent_url})" if evidence.intent_url else "")
    return Reply(f"{text}\n\n{line}", "answered", "intent", confidence, citations=[source])


def _topics(suggestions: list[str]) -> str:
    if not suggestions:
        return ""
    quoted = [f"“{s}”" for s in suggestions[:3]]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f" I can help with questions like {listed}."


def greeting(ctx: Context, subtype: str) -> Reply:
    evidence, bot = ctx.evidence, ctx.bot
    if subtype == "identity":
        text = (
            f"I'm {bot.name}, an AI assistant. I answer from our help centre, and I can "
            "connect you with a person whenever you like."
        )
        return Reply(text, "answered", "template")
    if evidence.intent is not None and evidence.intent.accepted and evidence.intent_responses:
        # The bot's own words, if its intent is this kind of greeting ("Thanks" for thanks).
        if greeting_kind(evidence.intent_title) == subtype:
            return intent(ctx)
    text = {
        "thanks": "You're welcome! Is there anything else I can help with?",
        "bye": "Thanks for chatting with us. Have a great day!",
    }.get(subtype, bot.greeting)
    return Reply(text, "answered", "template")


def nonsense(suggestions: list[str]) -> Reply:
    text = "Sorry, I didn't quite catch that. Could you rephrase your question?"
    return Reply(text + _topics(suggestions), "clarified", "template", suggestions=suggestions)


def irrelevant(ctx: Context, suggestions: list[str]) -> Reply:
    """Off topic: say what the bot is for, and still offer a person. The off-topic test is a
    bar on similarity, and a real question about the business that the knowledge never
    mentions ("do you have a store in Tokyo?") can fall under it: the customer then gets the
    way to a person instead of a dead end."""
    name = ctx.bot.organization.name
    text = (
        f"That's outside what I can help with, I'm afraid: I answer questions about {name}. "
        f"If your question is about {name}, a person from our team can help."
    )
    return Reply(
        text + _topics(suggestions),
        "deflected",
        "template",
        suggestions=suggestions,
        offer_human=True,
    )


def out_of_scope(suggestions: list[str], *, again: bool) -> Reply:
    """Nothing in the knowledge covers the question: say so, and offer a person at once.

    Not a clarifying question: a question the knowledge lacks stays unanswerable however the
    customer rephrases it, and asking them to try again only delays the person they need. A
    second miss in a row (`again`) says so and leaves the offer standing, without chips: the
    chips did not lead anywhere the first time. Whether a person comes without asking is the
    escalation rules' call (category out_of_scope)."""
    lead = OUT_OF_SCOPE_AGAIN if again else OUT_OF_SCOPE
    return Reply(
        f"{lead} A person from our team can help with it. {OFFER_QUESTION}",
        "handoff_proposed",
        "template",
        suggestions=[] if again else suggestions[:OUT_OF_SCOPE_CHIPS],
        offer_human=True,
        handoff_reason="The bot's knowledge does not cover the question",
        priority="medium",
        requires_followup=True,  # a question the knowledge is missing
    )


def missed_before(history: list[tuple[str, str]]) -> bool:
    """Whether the bot's previous reply was already an out-of-scope one."""
    last_ai = next((text for sender, text in reversed(history) if sender == "ai"), "")
    return last_ai.startswith((OUT_OF_SCOPE, OUT_OF_SCOPE_AGAIN))


def human(subtype: str) -> Reply:
    return Reply(
        HANDOFF_TEXT,
        "handoff",
        "template",
        handoff=True,
        handoff_reason="Customer asked for a person" + (f" ({subtype})" if subtype else ""),
        priority=PRIORITY.get(subtype, "high" if subtype else "medium"),
    )


def offer_person() -> Reply:
    """The message reads like a request for a person, but only by its resemblance to one: ask
    before handing over ("yes" then connects, see classify.AFFIRMATIVE)."""
    return Reply(
        f"It sounds like you'd like to talk to someone from our team. {OFFER_QUESTION}",
        "handoff_proposed",
        "template",
        offer_human=True,
        handoff_reason="Customer seems to ask for a person",
        priority="medium",
    )


def high_stakes(ctx: Context, subtype: str, gate) -> Reply:
    """Empathy, the relevant passage (or intent response) if one is strong, and an offer of a
    person."""
    parts = [EMPATHY.get(subtype, "I'm sorry about this.")]
    citations, method, confidence = [], "template", None
    if gate.decision == "strong":
        quote = excerpt(gate.best, ctx.query)
        parts.append(f"Here is what our help centre says: {quote}")
        parts.append(source_line(gate.best))
        citations = [citation(1, gate.best, ctx.bot, quote)]
        method, confidence = "extractive", gate.score
    elif gate.decision == "intent":
        reply = intent(ctx)
        parts.append(reply.text)
        method, confidence = "intent", reply.confidence
    parts.append(f"A person from our team can look into this with you. {OFFER_QUESTION}")
    return Reply(
        "\n\n".join(parts),
        "handoff_proposed",
        method,
        round(confidence, 4) if confidence is not None else None,
        citations=citations,
        offer_human=True,
        handoff_reason=f"High stakes: {subtype or 'unspecified'}",
        priority=PRIORITY.get(subtype, "high"),
        requires_followup=True,
    )


def unavailable() -> Reply:
    return Reply(
        f"I can't look that up right now. {OFFER_QUESTION}",
        "handoff_proposed",
        "template",
        offer_human=True,
        handoff_reason="Knowledge search unavailable",
        priority="medium",
        requires_followup=True,
    )


def blocked(prefix: str, method: str, priority: str | None) -> Reply:
    """The answer tripped a forbidden phrase: a person takes over. `prefix` is whatever had
    already shipped (it passed every check), so the final text still equals the tokens."""
    return Reply(
        prefix + ("\n\n" if prefix else "") + BLOCKED_TEXT,
        "handoff",
        method,
        handoff=True,
        handoff_reason="Guardrail: the answer contained a forbidden phrase",
        priority=priority or "medium",
    )


def emit(ctx: Context, reply: Reply, guard: Guard) -> Generator[dict, None, Reply]:
    """Check a ready answer whole, then ship it as one token."""
    verdict = guard.check(reply.text)
    if verdict.blocked:
        reply = blocked("", reply.method, reply.priority)
    else:
        reply.text = verdict.text
    if reply.text:
        yield {"type": "token", "text": reply.text}
    return reply
