"""The dashboard's tables as CSV rows, from what `selectors.dashboard()` returned: one function
per table, each giving the header and the rows. Figures stay machine-readable (rates as
fractions 0..1, times in seconds, blank where there is nothing to divide); a spreadsheet
formats them.

Text that came from people (bot, agent, rule and document names) is written so a spreadsheet
never runs it as a formula: a cell starting with = + - @ or a control character gets a leading
apostrophe (OWASP's advice on CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable

from analytics.templatetags.analytics_format import WEEKDAYS

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _rates(data: dict):
    header = ["day", "conversations", "ai_resolution_rate", "escalation_rate", "abandonment_rate"]
    rows = ([r["day"].isoformat(), *(r[k] for k in header[1:])] for r in data["series"])
    return header, rows


def _escalation_reasons(data: dict):
    header = ["trigger", "label", "rule_id", "rule_name", "count"]
    return header, ([r[k] for k in header] for r in data["escalation_reasons"])


TIMES = ("time_to_escalation", "first_response", "resolution_bot", "resolution_agent")


def _times(data: dict):
    header = ["figure", "p50_seconds", "p90_seconds", "n"]
    times = data["times"]
    return header, (
        [name, times[name]["p50"], times[name]["p90"], times[name]["n"]] for name in TIMES
    )


def _time_in_status(data: dict):
    header = ["status", "label", "avg_seconds", "n"]
    return header, ([r[k] for k in header] for r in data["time_in_status"])


def _csat(data: dict):
    header = ["resolved_by", "avg", "n", "score_1", "score_2", "score_3", "score_4", "score_5"]
    csat = data["csat"]
    return header, (
        [side, csat[side]["avg"], csat[side]["n"], *csat[side]["distribution"]]
        for side in ("bot", "agent", "all")
    )


def _heatmap(data: dict):
    header = ["weekday", *(f"{hour:02d}h" for hour in range(24))]
    return header, ([day, *row] for day, row in zip(WEEKDAYS, data["heatmap"], strict=False))


def _volume(data: dict):
    header = ["by", "id", "name", "conversations"]
    by_bot = (["bot", r["bot_id"], r["name"], r["conversations"]] for r in data["volume_by_bot"])
    by_channel = (
        ["channel", r["channel"], r["label"], r["conversations"]] for r in data["volume_by_channel"]
    )
    return header, [*by_bot, *by_channel]


QUALITY = ("turns", "answered", "hedged", "clarifying", "out_of_scope", "handoff")


def _quality(data: dict):
    header = ["figure", "count", "share_of_turns"]
    quality = data["quality"]
    turns = quality["turns"]
    rows = [[k, quality[k], quality[k] / turns if turns else None] for k in QUALITY]
    rows += [[k, quality[k], None] for k in ("thumbs_up", "thumbs_down")]
    return header, rows


def _to_fix(data: dict):
    header = ["source", "kind", "thumbs_down", "low_confidence"]
    return header, ([r[k] for k in header] for r in data["quality"]["to_fix"])


AGENT_COLUMNS = (
    "agent_id",
    "name",
    "handled",
    "resolved",
    "first_response_p50",
    "resolution_p50",
    "csat_avg",
    "csat_n",
)


def _agents(data: dict):
    header = [
        *AGENT_COLUMNS[:4],
        "first_response_p50_seconds",
        "resolution_p50_seconds",
        "csat_avg",
        "csat_n",
    ]
    return header, ([r[k] for k in AGENT_COLUMNS] for r in data["agents"])


TABLES: dict[str, Callable[[dict], tuple[list[str], Iterable[list]]]] = {
    "rates": _rates,
    "escalation_reasons": _escalation_reasons,
    "times": _times,
    "time_in_status": _time_in_status,
    "csat": _csat,
    "heatmap": _heatmap,
    "volume": _volume,
    "quality": _quality,
    "to_fix": _to_fix,
    "agents": _agents,
}
# What an agent's dashboard holds (their own row): every other table is for managers.
AGENT_TABLES = {"agents"}


def table_csv(*, table: str, data: dict) -> str:
    header, rows = TABLES[table](data)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()
