"""escalation.hours: open or closed in the bot's time zone, holidays, daylight saving, and the
admin's checks of hours and time zones."""

from datetime import UTC, date, datetime, time

import pytest
from django.core.exceptions import ValidationError

from escalation import hours
from escalation.models import BusinessHours
from escalation.tests.factories import BusinessHoursFactory, HolidayFactory

pytestmark = pytest.mark.django_db


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def berlin(acme_bot):
    """Acme's bot staffed 09:00-17:00 on weekdays, Berlin time (UTC+1 in winter, +2 in summer)."""
    return BusinessHoursFactory(bot=acme_bot, timezone="Europe/Berlin")


def test_a_bot_without_hours_is_always_open(acme_bot):
    night = utc(2026, 12, 6, 3, 0)  # a Sunday, 03:00
    assert hours.is_open(acme_bot, night)
    assert hours.next_opening(acme_bot, night) == night


def test_it_is_open_within_the_hours_in_the_bots_time_zone(acme_bot, berlin):
    # Tuesday 1 December: 08:30 UTC is 09:30 in Berlin.
    assert hours.is_open(acme_bot, utc(2026, 12, 1, 8, 30))
    assert not hours.is_open(acme_bot, utc(2026, 12, 1, 7, 30))  # 08:30 Berlin
    assert not hours.is_open(acme_bot, utc(2026, 12, 1, 16, 0))  # 17:00 Berlin: closed


def test_disabled_hours_mean_always_open(acme_bot, berlin):
    berlin.enabled = False
    berlin.save()
    assert hours.is_open(acme_bot, utc(2026, 12, 6, 3, 0))


def test_a_holiday_closes_the_whole_day(acme_bot, berlin):
    HolidayFactory(bot=acme_bot, date=date(2026, 12, 24), name="Christmas Eve")
    HolidayFactory(bot=acme_bot, date=date(2026, 12, 25), name="Christmas")
    assert not hours.is_open(acme_bot, utc(2026, 12, 24, 10, 0))  # a Thursday, 11:00 Berlin
    # From Thursday (holiday), Friday (holiday) and the weekend to Monday 28th 09:00 Berlin.
    opens = hours.next_opening(acme_bot, utc(2026, 12, 24, 10, 0))
    assert opens == utc(2026, 12, 28, 8, 0)
    assert str(opens.tzinfo) == "Europe/Berlin" and opens.hour == 9


def test_another_bots_holiday_does_not_close_this_one(acme_bot, globex_bot, berlin):
    HolidayFactory(bot=globex_bot, date=date(2026, 12, 24))
    assert hours.is_open(acme_bot, utc(2026, 12, 24, 10, 0))


def test_the_next_opening_honours_daylight_saving(acme_bot, berlin):
    # Friday 27 March 2026, 18:00 Berlin; clocks go forward on Sunday the 29th, so Monday's
    # 09:00 is 07:00 UTC rather than 08:00.
    assert hours.next_opening(acme_bot, utc(2026, 3, 27, 17, 0)) == utc(2026, 3, 30, 7, 0)


def test_split_hours_reopen_after_the_break(acme_bot):
    BusinessHoursFactory(bot=acme_bot, timezone="UTC", tuesday="09:00-12:00, 13:00-17:00")
    assert not hours.is_open(acme_bot, utc(2026, 12, 1, 12, 30))
    assert hours.next_opening(acme_bot, utc(2026, 12, 1, 12, 30)) == utc(2026, 12, 1, 13, 0)


def test_hours_to_midnight(acme_bot):
    BusinessHoursFactory(bot=acme_bot, timezone="UTC", tuesday="20:00-24:00")
    assert hours.is_open(acme_bot, utc(2026, 12, 1, 23, 59))


def test_a_bot_closed_every_day_has_no_next_opening(acme_bot):
    days = dict.fromkeys(
        ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"], ""
    )
    BusinessHoursFactory(bot=acme_bot, **days)
    assert hours.next_opening(acme_bot, utc(2026, 12, 1, 10, 0)) is None
    text, when = hours.reply_expectation(acme_bot, utc(2026, 12, 1, 10, 0))
    assert when is None and "as soon as we're back" in text


def test_the_customer_is_told_when_to_expect_an_answer(acme_bot, berlin):
    text, when = hours.reply_expectation(acme_bot, utc(2026, 12, 5, 12, 0))  # Saturday
    assert text == (
        "We're away right now. Leave your e-mail and we'll answer by Monday 09:00 (Europe/Berlin)."
    )
    assert when == utc(2026, 12, 7, 8, 0)


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        ("09:00-17:00", [(time(9), time(17))]),
        (" 13:00 - 17:00 , 9:00-12:00 ", [(time(9), time(12)), (time(13), time(17))]),
        ("", []),
        ("00:00-24:00", [(time(0), None)]),
    ],
)
def test_it_reads_hours(text, spans):
    assert hours.parse_spans(text) == spans


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("9 to 5", "not a span like 09:00-17:00"),
        ("09:00-25:00", "does not exist"),
        ("17:00-09:00", "ends before it starts"),
        ("09:00-13:00, 12:00-17:00", "overlap at 12:00"),
    ],
)
def test_bad_hours_are_refused_with_a_reason(text, words):
    with pytest.raises(ValueError, match=words):
        hours.parse_spans(text)


def test_the_admin_form_checks_every_day_and_the_time_zone(acme_bot):
    opening = BusinessHours(bot=acme_bot, timezone="Mars/Olympus", monday="9-5", friday="18-9")
    with pytest.raises(ValidationError) as caught:
        opening.full_clean()
    errors = caught.value.message_dict
    assert "not a time zone" in errors["timezone"][0]
    assert "09:00-17:00" in errors["monday"][0]
    assert set(errors) == {"timezone", "monday", "friday"}
