"""How the dashboard writes its figures for people: durations in the largest units that say
them (90 s, 3 min, 1 h 20 min, 2 d 4 h), rates as percentages, and each figure beside the
previous period's with the change (rates change in percentage points, counts and times in
percent). A figure with nothing behind it (None) shows as a dash, never as 0.
"""

from __future__ import annotations

from django import template
from django.utils.html import format_html

register = template.Library()

DASH = "–"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
HEAT_LEVELS = 5  # shades 0..4 in dashboard.css


@register.filter
def duration(seconds) -> str:
    """Seconds as people say them: 45 s, 3 min, 1 h 20 min, 2 d 4 h."""
    if seconds is None:
        return DASH
    seconds = round(float(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def percent(rate) -> str:
    """A rate of 0..1 as a percentage: whole numbers, one decimal below 10% (where 0.4% and 4%
    are different stories)."""
    if rate is None:
        return DASH
    value = float(rate) * 100
    if value != 0 and abs(value) < 10:
        return f"{value:.1f}%"
    return f"{value:.0f}%"


@register.filter
def score(value) -> str:
    """A CSAT average out of 5."""
    return DASH if value is None else f"{float(value):.2f}"


@register.filter
def share(part, whole) -> float | None:
    """part / whole, None when there is nothing to divide."""
    if part is None or not whole:
        return None
    return part / whole


def _number(value) -> int | float | None:
    """A figure, or None: a row missing from the previous period reads as "" in a template."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _formatted(value, kind: str) -> str:
    if kind == "rate":
        return percent(value)
    if kind == "duration":
        return duration(value)
    if kind == "score":
        return score(value)
    return DASH if value is None else f"{value:,}"


def _change(value, previous, kind: str) -> tuple[str, str]:
    """The change from `previous` to `value`, as text, and its direction (up, down, same)."""
    if value is None or previous is None:
        return "", "same"
    difference = value - previous
    direction = "up" if difference > 0 else "down" if difference < 0 else "same"
    if kind == "rate":
        points = difference * 100
        return (f"{points:+.1f} pts" if points else "±0 pts"), direction
    if kind == "score":
        return (f"{difference:+.2f}" if difference else "±0"), direction
    if not previous:
        return ("new" if value else "±0"), direction
    return f"{difference / previous * 100:+.0f}%", direction


@register.simple_tag
def vs(value, previous, kind: str = "count"):
    """The previous period's figure and the change, for beside a figure:
    "vs 64% (+7.1 pts)". Kinds: count, rate, duration, score."""
    value, previous = _number(value), _number(previous)
    change, direction = _change(value, previous, kind)
    if not change:
        return format_html('<span class="vs">previous period {}</span>', _formatted(previous, kind))
    return format_html(
        '<span class="vs">previous period {} <span class="delta {}">({})</span></span>',
        _formatted(previous, kind),
        direction,
        change,
    )


@register.filter
def lookup(mapping, key):
    """mapping[key], or None: the previous period's figure of the same name."""
    if not mapping:
        return None
    try:
        return mapping[key]
    except (KeyError, IndexError, TypeError):
        return None


@register.simple_tag
def same_row(rows, row, *fields):
    """The row of `rows` (the previous period's table) that matches `row` on `fields`, or None:
    `{% same_row previous.escalation_reasons r "trigger" "rule_id" as p %}`."""
    for other in rows or ():
        if all(other.get(f) == row.get(f) for f in fields):
            return other
    return None


@register.simple_tag
def heat_rows(heatmap) -> list[tuple[str, list[tuple[int, int]]]]:
    """The hour-of-week table: (weekday, [(count, shade 0..4) per hour]). Shades are relative
    to the busiest hour of the period, so the table shows peaks whatever the volume."""
    rows = heatmap or []
    busiest = max((n for row in rows for n in row), default=0)
    result = []
    for name, row in zip(WEEKDAYS, rows, strict=False):
        cells = []
        for n in row:
            level = 0 if not n or not busiest else 1 + round((n / busiest) * (HEAT_LEVELS - 2))
            cells.append((n, level))
        result.append((name, cells))
    return result
