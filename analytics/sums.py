"""The rollup rows of a period summed in PostgreSQL, for the dashboard (analytics/selectors.py).

A 90-day view of three bots on two channels is 540 daily rows and thousands of agent rows,
holding every duration of the period; summing them in SQL and sending back only the sums (and
two values of each sorted duration array) keeps a page load far below its 300 ms budget
(bench_analytics). Percentiles are the nearest rank with integer arithmetic, exactly as
analytics.definitions.percentile computes them (PostgreSQL's percentile_disc multiplies
floats, and 0.9 × 70 is 63.00000000000001 there).

Every name put into the SQL below is one of this module's constants, never a parameter.
"""

from __future__ import annotations

from django.db import connection

from analytics.definitions import OUTCOMES

DAILY = "analytics_dailyrollup"
AGENTS = "analytics_agentdailyrollup"
COUNTS = ("conversations", "ended", "bot_resolved", "agent_resolved", "abandoned", "escalated")
SUMMED = (*COUNTS, "demo", *OUTCOMES, "thumbs_up", "thumbs_down")
CSAT = ("csat_bot", "csat_agent", "csat_all")
DURATIONS = ("time_to_escalation", "first_response", "resolution_bot", "resolution_agent")


def _where(filters, *, agent_id: int | None = None) -> tuple[str, list]:
    clauses = ["t.organization_id = %s", "t.day >= %s", "t.day <= %s"]
    params: list = [filters.organization_id, filters.start, filters.end]
    if filters.bot_id is not None:
        clauses.append("t.bot_id = %s")
        params.append(filters.bot_id)
    if filters.channel is not None:
        clauses.append("t.channel = %s")
        params.append(filters.channel)
    if agent_id is not None:
        clauses.append("t.agent_id = %s")
        params.append(agent_id)
    return " AND ".join(clauses), params


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _ranked(column: str) -> str:
    """n, p50 and p90 of a sorted array `column` (nearest rank, 1-based)."""
    rank = "{column}[greatest(1, ({p} * cardinality({column}) + 99) / 100)]"
    return (
        f"coalesce(cardinality({column}), 0), "
        f"{rank.format(column=column, p=50)}, {rank.format(column=column, p=90)}"
    )


def by_day(filters) -> dict:
    """{day: {count: n, csat_bot: [5 ints], ...}} for the days with rows."""
    where, params = _where(filters)
    stars = [f"sum(t.{field}[{i}])" for field in CSAT for i in range(1, 6)]
    sums = [f"sum(t.{name})" for name in SUMMED]
    sql = f"SELECT t.day, {', '.join(sums + stars)} FROM {DAILY} t WHERE {where} GROUP BY t.day"
    days = {}
    for day, *values in _rows(sql, params):
        values = [int(v) for v in values]
        row = dict(zip(SUMMED, values[: len(SUMMED)], strict=True))
        offset = len(SUMMED)
        for k, field in enumerate(CSAT):
            row[field] = values[offset + 5 * k : offset + 5 * (k + 1)]
        days[day] = row
    return days


def volumes(filters) -> list[tuple[int, str, int]]:
    where, params = _where(filters)
    sql = (
        f"SELECT t.bot_id, t.channel, sum(t.conversations) FROM {DAILY} t WHERE {where} "
        "GROUP BY t.bot_id, t.channel"
    )
    return [(bot_id, channel, int(n)) for bot_id, channel, n in _rows(sql, params)]


def durations(filters) -> dict[str, dict]:
    """{"first_response": {"p50", "p90", "n"}, ...} over every row's durations."""
    where, params = _where(filters)
    merged = ", ".join(
        f"(SELECT array_agg(v ORDER BY v) FROM {DAILY} t, unnest(t.{name}) v WHERE {where}) "
        f"AS {name}"
        for name in DURATIONS
    )
    ranks = ", ".join(_ranked(f"s.{name}") for name in DURATIONS)
    # MATERIALIZED: each merged array is built once, not once per reference to it.
    (row,) = _rows(
        f"WITH s AS MATERIALIZED (SELECT {merged}) SELECT {ranks} FROM s",
        params * len(DURATIONS),
    )
    return {
        name: {"p50": row[3 * i + 1], "p90": row[3 * i + 2], "n": row[3 * i]}
        for i, name in enumerate(DURATIONS)
    }


def stays(filters) -> dict[str, tuple[int, int]]:
    where, params = _where(filters)
    sql = (
        "SELECT s.key, sum((s.value->>0)::bigint), sum((s.value->>1)::bigint) "
        f"FROM {DAILY} t, jsonb_each(t.time_in_status) s WHERE {where} GROUP BY s.key"
    )
    return {status: (int(total), int(n)) for status, total, n in _rows(sql, params)}


def reasons(filters) -> dict[str, int]:
    where, params = _where(filters)
    sql = (
        "SELECT s.key, sum(s.value::bigint) "
        f"FROM {DAILY} t, jsonb_each_text(t.escalation_reasons) s WHERE {where} GROUP BY s.key"
    )
    return {key: int(n) for key, n in _rows(sql, params)}


def hours(filters) -> list[int]:
    """Conversations per hour of the week (168, Monday 00h first)."""
    where, params = _where(filters)
    sql = (
        "SELECT h.i, sum(h.n) "
        f"FROM {DAILY} t, unnest(t.hours) WITH ORDINALITY h(n, i) WHERE {where} GROUP BY h.i"
    )
    week = [0] * 168
    for i, n in _rows(sql, params):
        week[i - 1] = int(n)
    return week


def weak(filters) -> dict[str, tuple[int, int]]:
    where, params = _where(filters)
    sql = (
        "SELECT s.key, sum((s.value->>0)::bigint), sum((s.value->>1)::bigint) "
        f"FROM {DAILY} t, jsonb_each(t.weak_sources) s WHERE {where} GROUP BY s.key"
    )
    return {key: (int(down), int(low)) for key, down, low in _rows(sql, params)}


def agents(filters, *, agent_id: int | None = None) -> dict[int, dict]:
    """{agent_id: {handled, resolved, csat_sum, csat_n, first_response: {n, p50},
    resolution: {n, p50}}}."""
    where, params = _where(filters, agent_id=agent_id)
    sql = (
        "SELECT t.agent_id, sum(t.handled), sum(t.resolved), sum(t.csat_sum), sum(t.csat_n) "
        f"FROM {AGENTS} t WHERE {where} GROUP BY t.agent_id"
    )
    table = {
        pk: {
            "handled": int(handled),
            "resolved": int(resolved),
            "csat_sum": int(csat_sum),
            "csat_n": int(csat_n),
            "first_response": None,
            "resolution": None,
        }
        for pk, handled, resolved, csat_sum, csat_n in _rows(sql, params)
    }
    for name in ("first_response", "resolution"):
        sql = (
            f"SELECT s.agent_id, {_ranked('s.a')} FROM (SELECT t.agent_id, "
            f"array_agg(v ORDER BY v) a FROM {AGENTS} t, unnest(t.{name}) v WHERE {where} "
            "GROUP BY t.agent_id) s"
        )
        for pk, _n, p50, _p90 in _rows(sql, params):
            table[pk][name] = p50
    return table
