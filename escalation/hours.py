"""Business hours: whether people are answering a bot's conversations at a moment, and when
they next will.

A bot's BusinessHours has a time zone and, per weekday, opening spans ("09:00-17:00,
18:00-20:00"; empty: closed). Holidays close a whole local day. Everything is reckoned in the
bot's wall-clock time, so "09:00" stays 09:00 across a daylight-saving change. A bot without
BusinessHours (or with them disabled) is staffed around the clock.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

from escalation.models import WEEKDAYS, BusinessHours, Holiday

SPAN = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
# How far ahead next_opening looks: a bot closed for longer than this has no next opening.
HORIZON_DAYS = 370

Spans = list[tuple[time, time | None]]  # end None: open until midnight ("…-24:00")


def parse_spans(text: str) -> Spans:
    """ "09:00-12:00, 13:00-17:00" as (start, end) pairs, in order. Raises ValueError with a
    sentence for the admin: a malformed span, an hour out of range, an end not after its
    start, overlapping spans."""
    spans: Spans = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        found = SPAN.match(part)
        if not found:
            raise ValueError(f"“{part}” is not a span like 09:00-17:00.")
        h1, m1, h2, m2 = (int(g) for g in found.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
            raise ValueError(f"“{part}” has a time that does not exist (00:00 to 24:00).")
        start, end = time(h1, m1), None if h2 == 24 else time(h2, m2)
        if end is not None and end <= start:
            raise ValueError(
                f"“{part}” ends before it starts; a span past midnight is two: "
                "22:00-24:00 today and 00:00-02:00 tomorrow."
            )
        spans.append((start, end))
    spans.sort(key=lambda span: span[0])
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        if end is None or end > start:
            raise ValueError(f"The spans overlap at {start:%H:%M}.")
    return spans


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; ValueError with a sentence if there is none."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"“{name}” is not a time zone; use a name such as Europe/Berlin or America/New_York."
        ) from None


def hours_for(bot) -> BusinessHours | None:
    """The bot's hours if they apply; None when the bot is staffed around the clock."""
    return BusinessHours.objects.filter(bot=bot, enabled=True).first()


def is_open(bot, at: datetime | None = None) -> bool:
    at = at or timezone.now()
    hours = hours_for(bot)
    if hours is None:
        return True
    tz = zone(hours.timezone)
    local = at.astimezone(tz)
    if _holidays(bot, local.date(), local.date()):
        return False
    now = local.time()
    return any(
        start <= now and (end is None or now < end) for start, end in _day_spans(hours, local)
    )


def next_opening(bot, at: datetime | None = None) -> datetime | None:
    """When people are next answering, in the bot's time zone: `at` itself if open now, None
    if the bot has no opening within HORIZON_DAYS (every day closed)."""
    at = at or timezone.now()
    hours = hours_for(bot)
    if hours is None:
        return at
    tz = zone(hours.timezone)
    local = at.astimezone(tz)
    closed = _holidays(bot, local.date(), local.date() + timedelta(days=HORIZON_DAYS))
    for offset in range(HORIZON_DAYS + 1):
        day = local.date() + timedelta(days=offset)
        if day in closed:
            continue
        for start, end in _day_spans(hours, day):
            opens = _wall(day, start, tz)
            if end is None:
                closes = _wall(day + timedelta(days=1), time(0), tz)
            else:
                closes = _wall(day, end, tz)
            if opens <= at < closes:
                return at.astimezone(tz)
            if opens > at:
                return opens
    return None


def reply_expectation(bot, at: datetime | None = None) -> tuple[str, datetime | None]:
    """What to tell a customer handed off while closed: the sentence and the time it names."""
    opens = next_opening(bot, at)
    if opens is None:
        return (
            "We're away right now. Leave your e-mail and we'll answer as soon as we're back.",
            None,
        )
    when = opens.strftime("%A %H:%M")
    at = at or timezone.now()
    if opens.date() - at.astimezone(opens.tzinfo).date() > timedelta(days=6):
        when = opens.strftime("%A %d %B %H:%M")
    return (
        f"We're away right now. Leave your e-mail and we'll answer by {when} ({opens.tzinfo}).",
        opens,
    )


def _day_spans(hours: BusinessHours, day) -> Spans:
    weekday = WEEKDAYS[day.weekday()]
    try:
        return parse_spans(getattr(hours, weekday))
    except ValueError:
        # Saved around admin validation (a shell, a migration): closed rather than guessed.
        return []


def _holidays(bot, first: date, last: date) -> set[date]:
    return set(
        Holiday.objects.filter(bot=bot, date__gte=first, date__lte=last).values_list(
            "date", flat=True
        )
    )


def _wall(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The moment a wall clock in `tz` shows `at` on `day`. A time skipped by a DST change
    (02:30 on the spring-forward night) becomes the moment after the gap."""
    moment = datetime.combine(day, at, tzinfo=tz)
    # Round-trip through UTC: a wall time that does not exist normalises forward.
    return moment.astimezone(ZoneInfo("UTC")).astimezone(tz)
