"""How the customer is doing, per message: VADER's compound score, ten signals, a level, and a
frustration score that accumulates over the conversation and the customer's recent contacts.

Everything here is lexicons, regular expressions and arithmetic: microseconds per message, no
model, and the same answer every time, so the admin's "Test a message" page shows exactly what
a real message would get. The signals:

- repeated_issue: the message restates an earlier one, of this conversation or of one of the
  customer's contacts in the last RECENT_DAYS (content-word overlap, see `_same_issue`).
- long_wait: the customer says they have been waiting ("still waiting", "for 3 days"), or they
  have: handed off more than LONG_WAIT ago with no agent reply yet, or their previous message
  went unanswered that long.
- threatening_churn: cancelling, leaving, switching to a competitor.
- profanity: a small lexicon of swear words (word-bounded, so "Scunthorpe" is fine).
- all_caps: shouting, most letters of a message of some length in capitals.
- multiple_exclamations: "!!", "?!", or three or more "!" anywhere.
- legal_threat: lawyers, suing, courts, regulators (the classifier's "legal" patterns).
- billing_dispute: double charges, unauthorised payments, chargebacks (the classifier's).
- time_pressure: "urgent", "asap", "right now", a deadline.
- previous_escalation: one of the customer's recent contacts went to a person.

Frustration (0–1) is why a calm fourth contact about the same parcel outranks one angry first
message: each message has an intensity (how negative and how many signals), the conversation
combines its messages' intensities with decay, and the customer's recent contacts about the
same issue add on top of that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from conversations.models import Conversation, Level, Message
from conversations.pipeline.classify import HIGH_STAKES, normalise
from conversations.sentiment import sentiment_score

SIGNALS = (
    "repeated_issue",
    "long_wait",
    "threatening_churn",
    "profanity",
    "all_caps",
    "multiple_exclamations",
    "legal_threat",
    "billing_dispute",
    "time_pressure",
    "previous_escalation",
)
# The customer's contacts that count: older ones are another story.
RECENT_DAYS = 14
# Waiting longer than this for a person (or any answer) is a long wait.
LONG_WAIT = timedelta(minutes=10)
# How many of the customer's recent messages are compared with this one.
HISTORY_MESSAGES = 100

# How much each signal adds to a message's intensity (0–1, with the negativity of its words).
# Restating an issue and waiting are the strongest: they mean the help so far has failed.
WEIGHTS = {
    "repeated_issue": 0.3,
    "long_wait": 0.25,
    "threatening_churn": 0.2,
    "profanity": 0.15,
    "all_caps": 0.1,
    "multiple_exclamations": 0.1,
    "legal_threat": 0.25,
    "billing_dispute": 0.15,
    "time_pressure": 0.1,
    "previous_escalation": 0.15,
}
NEGATIVITY_WEIGHT = 0.45
# A conversation's frustration: each message's intensity counts this much, and an older
# message's this much less per later message (so it can calm down again).
MESSAGE_GAIN = 0.6
MESSAGE_DECAY = 0.8
# Each earlier recent contact about the same issue, and each about something else.
SAME_ISSUE_CONTACT = 0.25
OTHER_CONTACT = 0.05

_HIGH_STAKES = dict(HIGH_STAKES)

PROFANITY = re.compile(
    r"\b(?:f+u+c+k+\w*|shit\w*|bullshit|crap(?:py)?|damn(?:ed|it)?|goddamn\w*|bastards?|"
    r"bitch\w*|assholes?|arseholes?|wtf|ffs|piss(?:ed)? off|bloody hell|screw you|"
    r"sod off|dickheads?|morons?|idiots?)\b"
)
CHURN = re.compile(
    r"\b(?:cancel(?:ling|ing|led)?|terminate|close) (?:my |our |the )?"
    r"(?:subscription|membership|plan|contract|account|order)\b"
    r"|\b(?:switch(?:ing)?|go(?:ing)?|mov(?:e|ing)) (?:over )?to (?:a |another |your )?"
    r"(?:competitor|competition|another (?:company|provider|shop|store))\b"
    r"|\btake my (?:business|money) elsewhere\b|\bnever (?:buy|order|shop)\w* (?:here |from you )?"
    r"again\b|\b(?:i'?m|we'?re|i am|we are) (?:leaving|done with you|out)\b|\bunsubscribe\b"
    r"|\bwant (?:a |my )?refund and (?:i'?m|i am) (?:done|leaving)\b|\blast (?:time|chance)\b"
)
TIME_PRESSURE = re.compile(
    r"\burgent(?:ly)?\b|\basap\b|\bas soon as possible\b|\bright (?:now|away)\b"
    r"|\bimmediately\b|\bemergency\b|\bdeadline\b|\btime[- ]sensitive\b"
    r"|\b(?:by|before) (?:today|tonight|tomorrow|monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday|the end of the day|noon|\d{1,2}(?::\d\d)? ?(?:am|pm)?)\b"
    r"|\bwithin (?:the next )?(?:an? |\d+ )(?:hour|minute)s?\b|\bno time\b"
)
SAYS_WAITING = re.compile(
    r"\b(?:still|been|keep|kept) (?:waiting|wait)\b|\bwaiting (?:for|since) (?:over |more than )?"
    r"(?:ages|hours|days|weeks|an? (?:hour|day|week)|\d+ (?:min|minute|hour|day|week)s?)\b"
    r"|\b(?:hours|days|weeks) (?:ago|now|later)\b"
    r"|\bno(?:body| one)(?: has)? (?:answer|repl|respond|got back)\w*\b"
    r"|\bstill (?:(?:has|have|is|are|does|do) )?(?:no|nothing|haven'?t|hasn'?t|not|n't)\b"
    r"|\bhow much longer\b"
)
WORD = re.compile(r"[a-z0-9']+")
# Words that say nothing about what the issue is, left out of the overlap.
STOPWORDS = frozenset(
    """a an the and or but if then so of to in on at by for with from about as into over after
    before again still just also too very really please thanks thank hi hello hey there here
    i me my mine we us our you your yours it its this that these those is am are was were be
    been being have has had do does did doing not no yes can could would should will shall may
    might must what when where why how which who whom any some all more most much many ok okay
    get got getting im ive dont didnt doesnt cant wont isnt hasnt havent one two now today yet
    anyone someone something anything know want need help problem issue thing""".split()
)
# Two messages are about the same issue when this share of the shorter one's content words
# (and at least two of them) are in the other.
SAME_ISSUE_OVERLAP = 0.5
SAME_ISSUE_MIN_WORDS = 2

LEVELS = [choice.value for choice in Level]  # mildest first


@dataclass
class Assessment:
    compound: float
    signals: list[str]
    level: str
    intensity: float
    frustration: float
    # Why, for the trace and the admin's test page.
    detail: dict = field(default_factory=dict)

    def trace(self) -> dict:
        return {
            "level": self.level,
            "intensity": self.intensity,
            "frustration": self.frustration,
            **self.detail,
        }


def assess_message(*, conversation: Conversation, text: str, at=None) -> Assessment:
    """Score a customer message that is about to be stored in `conversation` (so the stored
    messages are all earlier ones). Reads the conversation's and the customer's recent
    messages; writes nothing."""
    at = at or timezone.now()
    norm = normalise(text)
    compound = sentiment_score(text)
    history = _recent_customer_messages(conversation, since=at - timedelta(days=RECENT_DAYS))
    earlier_here = [m for m in history if m["conversation_id"] == conversation.pk]
    elsewhere = [m for m in history if m["conversation_id"] != conversation.pk]

    found = set(text_signals(text))
    words = content_words(norm)
    same_issue_contacts = {m["conversation_id"] for m in elsewhere if _same_issue(words, m["text"])}
    if same_issue_contacts or any(_same_issue(words, m["text"]) for m in earlier_here):
        found.add("repeated_issue")
    if _waited_long(conversation, at):
        found.add("long_wait")
    if _escalated_recently(conversation, since=at - timedelta(days=RECENT_DAYS)):
        found.add("previous_escalation")
    signals = [name for name in SIGNALS if name in found]

    level = level_for(compound, signals)
    intensity = message_intensity(compound, signals)
    contacts = {m["conversation_id"] for m in elsewhere}
    frustration = _frustration(
        intensity,
        earlier=[(m["trace"] or {}).get("escalation", {}).get("intensity") for m in earlier_here],
        same_issue_contacts=len(same_issue_contacts),
        other_contacts=len(contacts - same_issue_contacts),
    )
    return Assessment(
        compound=compound,
        signals=signals,
        level=level,
        intensity=intensity,
        frustration=frustration,
        detail={
            "same_issue_contacts": len(same_issue_contacts),
            "recent_contacts": len(contacts),
        },
    )


def assess_text(text: str) -> Assessment:
    """A message scored on its own, as the first of a first contact (no history): what the
    admin's "Test a message" page shows."""
    compound = sentiment_score(text)
    signals = text_signals(text)
    intensity = message_intensity(compound, signals)
    frustration = _frustration(intensity, earlier=[], same_issue_contacts=0, other_contacts=0)
    return Assessment(
        compound=compound,
        signals=signals,
        level=level_for(compound, signals),
        intensity=intensity,
        frustration=frustration,
    )


def text_signals(text: str) -> list[str]:
    """The signals readable from the text alone (the others need the customer's history)."""
    norm = normalise(text)
    found = []
    if SAYS_WAITING.search(norm):
        found.append("long_wait")
    if CHURN.search(norm) or _HIGH_STAKES["cancellation"].search(norm):
        found.append("threatening_churn")
    if PROFANITY.search(norm):
        found.append("profanity")
    if _shouting(text):
        found.append("all_caps")
    if "!!" in text or "?!" in text or "!?" in text or text.count("!") >= 3:
        found.append("multiple_exclamations")
    if _HIGH_STAKES["legal"].search(norm):
        found.append("legal_threat")
    if _HIGH_STAKES["billing_dispute"].search(norm):
        found.append("billing_dispute")
    if TIME_PRESSURE.search(norm):
        found.append("time_pressure")
    return [name for name in SIGNALS if name in found]


def level_for(compound: float, signals: list[str]) -> str:
    """urgent: a legal threat, or time pressure with anything negative; angry: very negative
    words, swearing, or shouting about something negative; frustrated: negative, or any sign
    the help so far failed; positive: clearly happy and nothing wrong; else neutral."""
    has = set(signals)
    negative = compound <= -0.05
    if "legal_threat" in has or ("time_pressure" in has and (negative or len(has) > 1)):
        return Level.URGENT
    if (
        compound <= -0.6
        or "profanity" in has
        or (has & {"all_caps", "multiple_exclamations"} and negative)
        or ("threatening_churn" in has and compound <= -0.4)
    ):
        return Level.ANGRY
    if compound <= -0.3 or has - {"previous_escalation", "time_pressure"}:
        return Level.FRUSTRATED
    if compound >= 0.3 and not has:
        return Level.POSITIVE
    return Level.NEUTRAL


def level_at_least(level: str, minimum: str) -> bool:
    if level not in LEVELS or minimum not in LEVELS:
        return False
    return LEVELS.index(level) >= LEVELS.index(minimum)


def message_intensity(compound: float, signals: list[str]) -> float:
    """How upset this one message reads, 0–1: the negativity of its words and its signals."""
    value = NEGATIVITY_WEIGHT * max(0.0, -compound) + sum(WEIGHTS[s] for s in signals)
    return round(min(1.0, value), 4)


def _frustration(
    intensity: float, *, earlier: list, same_issue_contacts: int, other_contacts: int
) -> float:
    """Combined like independent chances (1 - product of 1 - each), so every part raises the
    score, none can pass 1, and older messages weigh less than newer ones."""
    calm = 1.0 - MESSAGE_GAIN * intensity
    for age, value in enumerate(reversed(earlier), start=1):
        if value is not None:
            calm *= 1.0 - MESSAGE_GAIN * float(value) * MESSAGE_DECAY**age
    calm *= (1.0 - SAME_ISSUE_CONTACT) ** same_issue_contacts
    calm *= (1.0 - OTHER_CONTACT) ** other_contacts
    return round(min(1.0, max(0.0, 1.0 - calm)), 4)


def content_words(norm: str) -> set[str]:
    words = set()
    for word in WORD.findall(norm.replace("'", "")):
        if len(word) < 3 or word in STOPWORDS or word.isdigit():
            continue
        # A crude stem, enough for "parcels"/"parcel", "arrived"/"arrive".
        for suffix in ("ing", "ed", "es", "s"):
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                word = word[: -len(suffix)]
                break
        words.add(word)
    return words


def _same_issue(words: set[str], other_text: str) -> bool:
    other = content_words(normalise(other_text))
    shared = words & other
    if len(shared) < SAME_ISSUE_MIN_WORDS:
        return False
    return len(shared) / min(len(words), len(other)) >= SAME_ISSUE_OVERLAP


CAPS_RUN = re.compile(r"\b[A-Z]{2,}(?:[^a-zA-Z]+[A-Z]{2,}\b){2,}")


def _shouting(text: str) -> bool:
    """Most of the message in capitals, or three capitalised words in a row ("THIS IS
    RIDICULOUS"); short acronyms ("OK", "FAQ", "PDF") alone are not shouting."""
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 8:
        return False
    upper = sum(1 for c in letters if c.isupper())
    if upper / len(letters) >= 0.7:
        return True
    run = CAPS_RUN.search(text)
    return bool(run) and sum(c.isalpha() for c in run.group()) >= 8


def _recent_customer_messages(conversation: Conversation, *, since) -> list[dict]:
    """The customer's messages of the last RECENT_DAYS, newest last (one query)."""
    rows = (
        Message.objects.filter(
            conversation__customer_id=conversation.customer_id,
            sender=Message.Sender.USER,
            created_at__gte=since,
        )
        .order_by("-id")
        .values("conversation_id", "text", "trace", "created_at")[:HISTORY_MESSAGES]
    )
    return list(reversed(rows))


def _waited_long(conversation: Conversation, at) -> bool:
    """Handed off LONG_WAIT ago and no agent has written since, or the customer's previous
    message has had no answer for that long."""
    cutoff = at - LONG_WAIT
    if conversation.status == Conversation.Status.WAITING and conversation.handoff_at:
        if conversation.handoff_at <= cutoff:
            return True
    last = conversation.messages.exclude(sender=Message.Sender.SYSTEM).order_by("-id").first()
    return bool(last and last.sender == Message.Sender.USER and last.created_at <= cutoff)


def _escalated_recently(conversation: Conversation, *, since) -> bool:
    return (
        Conversation.objects.filter(customer_id=conversation.customer_id, created_at__gte=since)
        .exclude(pk=conversation.pk)
        .filter(Q(escalations__isnull=False) | Q(handoff_at__isnull=False))
        .exists()
    )
