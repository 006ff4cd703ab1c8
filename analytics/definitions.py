"""The small rules every figure shares, so the rollups (analytics/rollup.py), the dashboard
(analytics/selectors.py) and the direct computation the tests check them with
(analytics/figures.py) cannot drift apart: what a day is, how a duration is counted, which
percentile, which source a weak answer is blamed on."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.utils import timezone

# Every status a conversation can stay in; closed is where it stays for good.
STALL_STATUSES = ("ai", "waiting", "active", "awaiting_customer", "resolved")
ENDED_STATUSES = ("resolved", "closed")
PLAYGROUND = "playground"
CHANNELS = ("widget", "api")
# The bot's turn outcomes (Message.Outcome), as the rollups count them.
OUTCOMES = ("answered", "clarified", "deflected", "low_confidence", "handoff_proposed", "handoff")


def day_start(day: date) -> datetime:
    """The first instant of `day` in settings.TIME_ZONE."""
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[start, end) instants of the days first..last inclusive."""
    return day_start(first), day_start(last + timedelta(days=1))


def local_day(moment: datetime) -> date:
    return timezone.localtime(moment).date()


def hour_of_week(moment: datetime) -> int:
    """0 = Monday 00:00–00:59 local … 167 = Sunday 23h."""
    local = timezone.localtime(moment)
    return local.weekday() * 24 + local.hour


def seconds(start: datetime, end: datetime) -> int:
    """Whole seconds from start to end, floored; never negative (clocks of two processes)."""
    return max(0, (end - start) // timedelta(seconds=1))


def percentile(values: list[int], p: int) -> int | None:
    """The nearest-rank percentile (PostgreSQL's percentile_disc): the smallest value with at
    least p % of the values at or below it. Integer arithmetic, so it is exact. None for none.
    `values` must be sorted."""
    if not values:
        return None
    rank = (p * len(values) + 99) // 100  # ceil(p/100 * n), 1-based
    return values[max(rank, 1) - 1]


def weak_sources(citations, intent) -> list[str]:
    """What a thumbs-down or low-confidence answer is blamed on, as "kind:name" keys: the
    intent it answered from (trace["intent"], when accepted), else each document it cited
    (Message.citations titles), once each."""
    if isinstance(intent, dict) and intent.get("accepted") and intent.get("tag"):
        return [f"intent:{intent['tag']}"]
    keys: list[str] = []
    for cited in citations if isinstance(citations, list) else []:
        title = cited.get("title") if isinstance(cited, dict) else None
        if isinstance(title, str) and title.strip():
            key = f"document:{title.strip()}"
            if key not in keys:
                keys.append(key)
    return keys


def reason_key(trigger: str, rule_id: int | None) -> str:
    return f"{trigger}:{rule_id if rule_id is not None else ''}"


def reason_split(key: str) -> tuple[str, int | None]:
    trigger, _, rule = key.partition(":")
    return trigger, int(rule) if rule else None


# --- Knowledge gaps (analytics/gaps.py) -------------------------------------------------------
# How the pipeline marks a bot answer that did not serve the customer's question (README,
# "Knowledge gaps"). Each kind is read from the answer (Message) the pipeline or the customer
# left; the question is the customer message it replied to (Message.reply_to).
GAP_KINDS = {
    "bot_missed": "Marked by an agent",  # Conversation.bot_missed: an agent's verdict
    "out_of_scope": "Not in the knowledge",  # trace["category"] == "out_of_scope"
    "hedged": "Hedged answer",  # outcome low_confidence: weak evidence, with a disclaimer
    "clarifying": "Asked to clarify",  # outcome clarified (today: only for gibberish)
    "thumbs_down": "Thumbs down",  # feedback == -1
    "not_answered": "“No” to “Did that answer your question?”",  # confirmed is False
    "handed_off": "Handed off after an answer",  # the last answer before the first handoff
    "action_failed": "An action failed",  # trace["action_failed"]: timeout, error status, template
}
# Answers whose question counts as handed off after an answer: the bot did answer, and the
# conversation still went to a person. A handoff the bot proposed or made itself is already a
# kind of its own (out_of_scope) or no knowledge gap (the customer asked for a person).
ANSWERING_OUTCOMES = ("answered", "low_confidence")


def gap_kinds(
    *, outcome: str, category: str | None, feedback, confirmed, action_failed=None
) -> list[str]:
    """The gap kinds one bot answer carries (an answer may carry several: a hedged answer
    rated thumbs down). `category` is the answer's trace["category"], `action_failed` its
    trace["action_failed"] (the business's endpoint failed: the question went unanswered)."""
    kinds = []
    if action_failed is True:
        kinds.append("action_failed")
    if category == "out_of_scope":
        kinds.append("out_of_scope")
    if outcome == "low_confidence":
        kinds.append("hedged")
    if outcome == "clarified":
        kinds.append("clarifying")
    if feedback == -1:
        kinds.append("thumbs_down")
    if confirmed is False:
        kinds.append("not_answered")
    return kinds
