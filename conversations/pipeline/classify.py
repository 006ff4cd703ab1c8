"""Step 1: what kind of message is this?

Categories: answerable, greeting (hello, thanks, bye), nonsense, irrelevant (off-topic
chit-chat), high_stakes (subtypes cancellation, billing_dispute, security, legal, complaint) and
human (asks for a person). out_of_scope is not decided here: it is an answerable question that
the relevance gate finds no knowledge for.

Offline the decision is made in two passes:
1. rules on the text (`by_rules`), before retrieval. Requests for a person, high-stakes
   subjects, bare greetings and gibberish are decided here and are final; off-topic patterns
   ("tell me a joke") are soft: knowledge that answers the question overrides them, so a
   weather service's bot still answers about the weather.
2. embeddings (`refine`), after retrieval, for what the rules left open: the turn's one query
   vector against small prototype sets (prototypes.py), compared with what the bot's knowledge
   scored. A message is off-topic only if it is more like chit-chat than like anything the bot
   knows.

With an LLM, a forced tool call (`classify_message`) replaces both passes; any failure falls
back to them. Requests for a person and high-stakes subjects found by the rules stand even
when the LLM calls the message answerable: a customer who writes "I want a human" gets one.
The LLM's "irrelevant" is soft like the rules': it cannot know what the bot's knowledge holds.
"""

from __future__ import annotations

import re
import unicodedata

from conversations.pipeline import gibberish, llm
from conversations.pipeline.context import Classification, Context, timed
from conversations.pipeline.prototypes import prototypes
from knowledge.embeddings import EmbeddingError

CATEGORIES = ("answerable", "greeting", "nonsense", "irrelevant", "high_stakes", "human")
SUBTYPES = ("cancellation", "billing_dispute", "security", "legal", "complaint")
# The question that ends every offer of a person; "yes" right after it means "connect me".
OFFER_QUESTION = "Would you like me to connect you with a person?"


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").casefold()
    return re.sub(r"\s+", " ", text).strip()


_PERSON = (
    r"(?:human|person|people|agent|representative|rep|someone|somebody|operator|staff|"
    r"manager|supervisor|advisor|adviser|customer (?:service|support|care))"
)
HUMAN = re.compile(
    rf"\b(?:talk|speak|chat)(?:ing)? (?:to|with) (?:a |an |some |your |the |one of your )?"
    rf"(?:real |live |actual )?{_PERSON}\b"
    rf"|\b(?:connect|transfer|put|pass) me (?:through |over )?(?:to|with) "
    rf"(?:a |an |your |the )?(?:real |live )?{_PERSON}\b"
    r"|\b(?:real|live|actual) (?:human|person|agent|people)\b"
    r"|\b(?:get|give|need|want) (?:me )?(?:a |an )?(?:human|real person|agent|representative)\b"
    r"|^(?:a |an )?(?:human|agent|representative|operator|person)(?: please| pls| now)?[.!? ]*$",
)
# "are you a bot?" asks about the bot, not for a person.
IDENTITY = re.compile(
    r"^(?:are you|r u|is this|am i (?:talking|chatting|speaking) (?:to|with)) (?:a |an )?"
    r"(?:real )?(?:bot|robot|human|person|ai|machine|computer|chatbot)\b[^.!?]*[.!?]*$"
)
AFFIRMATIVE = re.compile(
    r"^(?:yes|yeah|yep|yup|sure|ok|okay|please|please do|yes please|go ahead|do it)"
    r"(?: please| thanks| thank you)?[.! ]*$"
)
# Most specific first: "someone hacked my account and made a fraudulent charge" is security.
HIGH_STAKES = [
    (
        "security",
        r"\bhack(?:ed|er|ers|ing)?\b|\bcompromised\b|\bphishing\b|\bidentity theft\b"
        r"|\bfraud\b|\bscam (?:e-?mail|text|sms|call|message)"
        r"|\bsomeone (?:else )?(?:has )?(?:logged|signed|got|broke) in"
        r"|\b(?:stolen|leaked) (?:password|identity|data|credentials|details)"
        r"|\bsuspicious (?:login|log-in|sign-in|activity|transaction|e-?mail)"
        r"|\bdata breach\b|\b(?:my|the) account (?:was|has been|got) (?:taken over|accessed)",
    ),
    (
        "legal",
        r"\blawyers?\b|\battorneys?\b|\bsolicitors?\b|\blawsuit\b|\blegal action\b"
        r"|\b(?:sue|suing) (?:you|your|them|the|this|acme|for)\b"
        r"|\b(?:going|gonna|want|will|would|plan|planning) (?:to )?sue\b|\bcourt\b|\bgdpr\b"
        r"|\bdata protection\b|\bsubject access request\b|\bdsar\b|\bright to be forgotten\b"
        r"|\bombudsman\b|\bsmall claims\b|\btrading standards\b",
    ),
    (
        "billing_dispute",
        r"\b(?:charged|billed) (?:me )?(?:twice|two times|double|again|wrongly|incorrectly)\b"
        r"|\bdouble[- ]charged\b|\bovercharged\b|\bchargeback\b"
        r"|\b(?:unauthori[sz]ed|fraudulent|unrecogni[sz]ed|unknown|wrong) "
        r"(?:charges?|transactions?|payments?|debits?)\b"
        r"|\bdispute (?:a |the |this |my )?(?:charge|payment|transaction|bill)\b"
        r"|\bi (?:did not|didn't|never) (?:make|authori[sz]e|order|buy|agree to) "
        r"(?:this|that|these|it)\b|\b(?:i want|give me) my money back\b",
    ),
    (
        "cancellation",
        r"\b(?:cancel|terminate|end|stop|quit)(?:ling|ing|led|ed)? (?:my |our |the |this )?"
        r"(?:subscription|membership|plan|contract|account|service|policy)\b"
        r"|\b(?:close|delete|deactivate) (?:my|our) (?:\w+ )?account\b|\bunsubscribe me\b",
    ),
    (
        "complaint",
        r"\bunacceptable\b|\bcomplain(?:t|ts|ing)?\b|\bdisgusted\b|\bdisgraceful\b|\bfurious\b"
        r"|\bappalling\b|\bridiculous\b|\bfed up\b|\bsick (?:and tired )?of\b"
        r"|\b(?:worst|terrible|awful|horrible|pathetic|useless) "
        r"(?:service|experience|company|support|customer service)\b"
        r"|\bnever (?:again|buying|ordering|shopping)\b|\bthis is a (?:joke|scam)\b",
    ),
]
HIGH_STAKES = [(subtype, re.compile(pattern)) for subtype, pattern in HIGH_STAKES]

_HELLO = (
    r"hi+|hello+|hey+|hiya|heya|howdy|yo|greetings?|hallo|hola|bonjour|"
    r"good (?:morning|afternoon|evening|day)|morning|evening|"
    r"how are (?:you|u)(?: doing)?(?: today)?|how(?:'s| is) it going|what'?s up|sup|"
    r"(?:is )?(?:any|some)(?:one|body) (?:there|here|around)"
)
_THANKS = (
    r"thanks?(?: you| u)?|thx|ty|tysm|cheers|much appreciated|appreciate(?:d| it)|"
    r"that helps|that helped|that'?s (?:very )?helpful|helpful|perfect|great|awesome|brilliant|"
    r"cool|nice|excellent|wonderful|lovely|got it|understood|ok(?:ay)?|sounds good|"
    r"no problem|good to know|👍|🙏|🙂|😊|👌|❤️?"
)
_BYE = (
    r"bye+|goodbye|good bye|bye bye|see (?:you|ya)|later|take care|"
    r"have a (?:nice|good|great) (?:day|one|evening|weekend)|that'?s all|nothing else|"
    r"no(?:pe)?,? thanks?(?: you)?|all good|i'?m (?:done|good)|nope|nah|no"
)
_FILLER = set(
    "so very much a lot again you there all for the your and oh ah well just really guys team "
    "folks everyone bot mate then that it is was this i me yes yeah yep sir madam dear friend "
    "too as always once more".split()
)
# Plainly off-topic requests. Soft: a bot whose knowledge answers them still does.
OFF_TOPIC = re.compile(
    r"\b(?:weather|forecast)\b|\b(?:tell|know) (?:me )?(?:a |any )?(?:joke|story|riddle)s?\b"
    r"|\bjokes?\b|\bmeaning of life\b|\bsing (?:me )?a song\b|\bplay a game\b"
    r"|\bwrite (?:me )?a (?:poem|story|essay|song)\b|\bcapital of\b|\bhow old are you\b"
    r"|\bwhat'?s your (?:favou?rite|name)\b|\b(?:football|soccer|basketball|baseball|cricket) "
    r"(?:game|match|score)s?\b|\bwho won the\b|\brecipe for\b|\bi'?m bored\b"
)


def _greeting_kind(norm: str) -> str | None:
    """ "thanks", "bye" or "hello" when the message is only a greeting (and filler words)."""
    text = re.sub(r"\s+", " ", re.sub(r"[^\w\s'👍🙏🙂😊👌❤️]", " ", norm))
    found = []
    # Goodbyes first: "no thanks, that's all" is a goodbye, not thanks.
    for kind, pattern in (("bye", _BYE), ("thanks", _THANKS), ("hello", _HELLO)):
        text, n = re.subn(rf"(?<!\w)(?:{pattern})(?!\w)", " ", text)
        if n:
            found.append(kind)
    if not found or any(word not in _FILLER for word in text.split()):
        return None
    return found[0]


def greeting_kind(text: str) -> str | None:
    return _greeting_kind(normalise(text))


def is_greeting(text: str) -> bool:
    return greeting_kind(text) is not None


def _high_stakes(norm: str) -> str:
    return next((subtype for subtype, rx in HIGH_STAKES if rx.search(norm)), "")


def by_rules(ctx: Context, vocabulary: frozenset[str]) -> Classification | None:
    """A decision from the text alone, or None when it takes the knowledge to tell."""
    norm = normalise(ctx.turn.text)
    subtype = _high_stakes(norm)
    last_ai = next((t for s, t in reversed(ctx.turn.history) if s == "ai"), "")
    if AFFIRMATIVE.match(norm) and last_ai.rstrip().endswith(OFFER_QUESTION):
        return Classification("human", subtype, scores={"rule": "accepted_offer"})
    if IDENTITY.match(norm):
        return Classification("greeting", "identity", scores={"rule": "identity"})
    if HUMAN.search(norm):
        return Classification("human", subtype, scores={"rule": "human"})
    if subtype:
        return Classification("high_stakes", subtype, scores={"rule": subtype})
    kind = _greeting_kind(norm)
    if kind:
        return Classification("greeting", kind, scores={"rule": "greeting"})
    assessed = gibberish.assess(norm, vocabulary)
    if assessed["nonsense"]:
        return Classification("nonsense", scores={"rule": "gibberish", **assessed})
    if OFF_TOPIC.search(norm):
        return Classification("irrelevant", soft=True, scores={"rule": "off_topic"})
    return None


TOOL = {
    "type": "function",
    "function": {
        "name": "classify_message",
        "description": "Record what kind of message the customer just sent.",
        "parameters": {
            "type": "object",
            "properties": {
                "category": {"type": "string", "enum": list(CATEGORIES)},
                "subtype": {"type": "string", "enum": [*SUBTYPES, "none"]},
            },
            "required": ["category"],
        },
    },
}
_INSTRUCTIONS = """You sort the messages customers send to {bot}, the support assistant of \
{organization}. Categories:
- answerable: a question or request about the company, its products, orders, accounts or \
policies (even if you do not know the answer);
- greeting: only a greeting, thanks or goodbye;
- nonsense: gibberish, keyboard mashing, or symbols only;
- irrelevant: chit-chat unrelated to the company (weather, jokes, trivia, sport);
- high_stakes: cancelling a subscription or closing an account (cancellation), a disputed or \
unrecognised charge (billing_dispute), a hacked account, fraud or phishing (security), lawyers, \
lawsuits or data-protection requests (legal), an angry complaint (complaint); give the subtype;
- human: the customer asks to talk to a person.
Call classify_message once."""


def by_llm(ctx: Context) -> Classification:
    """The LLM's decision through a forced tool call; raises llm.LLMError."""
    recent = [f"{sender}: {text}" for sender, text in ctx.turn.history[-4:]]
    content = ctx.turn.text[:2000]
    if recent:
        content = "Conversation so far:\n" + "\n".join(recent) + f"\n\nNew message: {content}"
    messages = [
        {
            "role": "system",
            "content": _INSTRUCTIONS.format(
                bot=ctx.bot.name, organization=ctx.bot.organization.name
            ),
        },
        {"role": "user", "content": content},
    ]
    call = llm.Call("classify", ctx.llm.model)
    try:
        arguments = llm.call_tool(ctx.llm, messages, TOOL, call)
    finally:
        ctx.trace.setdefault("llm_calls", []).append(call.as_trace())
    category = arguments.get("category")
    if category not in CATEGORIES:
        raise llm.LLMError("malformed", f"unknown category {category!r}")
    subtype = arguments.get("subtype")
    subtype = subtype if subtype in SUBTYPES and category in ("high_stakes", "human") else ""
    # "Off-topic" is the model's guess about the bot's domain; the knowledge knows better.
    soft = category == "irrelevant"
    return Classification(category, subtype, method="llm", soft=soft, scores={"llm": arguments})


def step(ctx: Context, vocabulary: frozenset[str]) -> Classification:
    """Rules, and the LLM where there is one; refine() completes an undecided result."""
    with timed(ctx.trace, "classify"):
        rules = by_rules(ctx, vocabulary)
        result = rules or Classification("answerable", method="default", soft=True)
        if ctx.llm_usable():
            try:
                result = _merge(rules, by_llm(ctx))
                if result.category == "greeting" and not result.subtype:
                    # The reply depends on the kind: hello, thanks or bye.
                    result.subtype = _greeting_kind(normalise(ctx.turn.text)) or "hello"
            except llm.LLMError as exc:
                ctx.llm_down = exc.unreachable
                ctx.trace["classify_fallback"] = str(exc)
        ctx.classification = result
        _record(ctx)
    return result


def _merge(rules: Classification | None, decided: Classification) -> Classification:
    if rules is None or rules.category not in ("human", "high_stakes"):
        return decided
    if decided.category == "human":
        decided.subtype = decided.subtype or rules.subtype
        return decided
    rules.method = "rules"
    rules.scores = {**rules.scores, "llm": decided.scores.get("llm")}
    return rules


def refine(ctx: Context, *, gate: str, knowledge_similarity: float) -> None:
    """Complete a soft or undecided offline result with the query vector, after retrieval.

    Knowledge that answers (a strong passage, or an intent closer than any prototype set) wins.
    Otherwise a prototype set wins if the
    message is at least as close to it as its own members are to each other, and closer to it
    than to anything the bot knows; off-topic only where the knowledge has nothing (gate none),
    since related knowledge (a weak match) says the message is about the bot's subject.
    """
    result = ctx.classification
    if result is None or not result.soft or ctx.evidence.vector is None:
        return
    with timed(ctx.trace, "classify"):
        try:
            sets = prototypes(ctx.bot.embedding_model_active)
        except EmbeddingError as exc:  # an embedding endpoint that just failed: keep the rules'
            result.scores["prototypes_error"] = str(exc)[:200]
            return
        similarity = sets.similarity(ctx.evidence.vector)
        result.scores.update(
            prototypes={k: round(v, 3) for k, v in similarity.items()},
            bars={k: round(v, 3) for k, v in sets.bars.items()},
            knowledge=round(knowledge_similarity, 3),
        )
        closest = max(similarity.values())
        # A passage that answers wins; an intent wins when it is closer than any prototype (an
        # intent's acceptance is calibrated on its own patterns, not against chit-chat).
        if gate == "strong" or (gate == "intent" and knowledge_similarity >= closest):
            if result.category != "answerable":
                result.scores["overridden_by_knowledge"] = result.category
            result.category = "answerable"
            result.method = "llm" if result.method == "llm" else "embeddings"
        elif result.method != "llm":
            name, best = max(similarity.items(), key=lambda item: item[1])
            # Related knowledge (a weak match) means the message is not chit-chat, but it may
            # still be a greeting or a request for a person.
            off_topic_possible = gate in ("none", "skipped") or name != "irrelevant"
            if off_topic_possible and best >= sets.bars[name] and best > knowledge_similarity:
                result.category, result.method = name, "embeddings"
        result.soft = False
        _record(ctx)


def _record(ctx: Context) -> None:
    result = ctx.classification
    ctx.trace.update(
        category=result.category,
        subtype=result.subtype,
        classify_method=result.method,
        classify_scores=result.scores,
    )
