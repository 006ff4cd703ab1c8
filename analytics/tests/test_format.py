"""How the dashboard writes figures for people (analytics/templatetags/analytics_format.py)."""

from __future__ import annotations

import pytest

from analytics.templatetags.analytics_format import duration, heat_rows, percent, score, vs


@pytest.mark.parametrize(
    "seconds, text",
    [
        (None, "–"),
        (0, "0 s"),
        (45, "45 s"),
        (90, "2 min"),
        (3599, "1 h"),
        (4800, "1 h 20 min"),
        (86400, "1 d"),
        (187200, "2 d 4 h"),
    ],
)
def test_durations_read_as_people_say_them(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize(
    "rate, text",
    [(None, "–"), (0, "0%"), (0.004, "0.4%"), (0.0712, "7.1%"), (0.25, "25%"), (1, "100%")],
)
def test_percentages(rate, text):
    assert percent(rate) == text


def test_scores_out_of_five():
    assert score(None) == "–" and score(3.5) == "3.50"


def test_the_change_from_the_previous_period():
    # Rates change in percentage points, counts and times in percent.
    assert "previous period 20%" in vs(0.25, 0.2, "rate") and "+5.0 pts" in vs(0.25, 0.2, "rate")
    assert 'class="delta up"' in vs(0.25, 0.2, "rate")
    assert "(-50%)" in vs(5, 10) and 'class="delta down"' in vs(5, 10)
    assert "previous period 2 min" in vs(60, 120, "duration")
    assert "(new)" in vs(3, 0)
    # Nothing to compare with: the previous figure alone, no change made up.
    assert vs(0.5, None, "rate") == '<span class="vs">previous period –</span>'
    assert "(" not in vs(None, 0.5, "rate")


def test_the_heatmap_shades_relative_to_the_busiest_hour():
    heatmap = [[0] * 24 for _ in range(7)]
    heatmap[0][9] = 10
    heatmap[6][23] = 1
    rows = heat_rows(heatmap)
    assert [name for name, _ in rows][0] == "Monday" and len(rows) == 7
    assert rows[0][1][9] == (10, 4)
    assert rows[6][1][23] == (1, 1)
    assert rows[3][1][0] == (0, 0)
    assert heat_rows([[0] * 24] * 7)[0][1][0] == (0, 0)
