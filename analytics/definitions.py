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
