"""Billing periods follow the calendar from the anchor (as Stripe's), intervals are bounded, and monthly recurring
revenue is exact."""

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest

from payments_gateway.services.periods import boundary, interval_errors, monthly_amount, period_bounds, round_to


def at(y, m, d):
    return datetime(y, m, d, 9, 30, tzinfo=UTC)


def test_monthly_periods_anchored_on_the_31st_follow_the_calendar():
    anchor = at(2024, 1, 31)
    ends = [boundary(anchor, "month", 1, n) for n in range(1, 6)]
    assert ends == [at(2024, 2, 29), at(2024, 3, 31), at(2024, 4, 30), at(2024, 5, 31), at(2024, 6, 30)]
    assert boundary(at(2025, 1, 31), "month", 1, 1) == at(2025, 2, 28)  # not a leap year


def test_period_bounds_of_a_later_period_count_from_the_anchor_not_the_previous_end():
    assert period_bounds(at(2024, 1, 31), "month", 1, 3) == (at(2024, 3, 31), at(2024, 4, 30))
    assert period_bounds(at(2024, 11, 30), "month", 3, 2) == (at(2025, 2, 28), at(2025, 5, 30))


def test_years_weeks_and_days():
    assert boundary(at(2024, 2, 29), "year", 1, 1) == at(2025, 2, 28)
    assert boundary(at(2024, 2, 29), "year", 1, 4) == at(2028, 2, 29)
    assert boundary(at(2024, 12, 30), "week", 2, 1) == at(2025, 1, 13)
    assert boundary(at(2024, 2, 28), "day", 1, 2) == at(2024, 3, 1)


@pytest.mark.parametrize(
    ("interval", "count", "field", "message"),
    [
        ("fortnight", 1, "interval", "unknown interval 'fortnight'; use one of day, week, month, year"),
        ("month", 0, "interval_count", "from 1 to 12 for interval 'month'"),
        ("month", 13, "interval_count", "from 1 to 12"),
        ("day", 366, "interval_count", "from 1 to 365"),
        ("week", 53, "interval_count", "from 1 to 52"),
        ("year", 2, "interval_count", "from 1 to 1"),
        ("month", 10**40, "interval_count", "from 1 to 12"),
        ("month", "3", "interval_count", "whole number"),
        ("month", True, "interval_count", "whole number"),
    ],
)
def test_bad_intervals_name_the_field(interval, count, field, message):
    errors = interval_errors(interval, count)
    assert list(errors) == [field] and message in errors[field]


def test_the_largest_allowed_intervals_are_fine():
    assert not any(interval_errors(i, n) for i, n in [("day", 365), ("week", 52), ("month", 12), ("year", 1)])


def test_a_yearly_plan_counts_a_twelfth_per_month_exactly():
    assert monthly_amount(Decimal("100.00"), "year", 1) == Fraction(100, 12)
    assert monthly_amount(Decimal("30.00"), "month", 3) == 10
    assert monthly_amount(Decimal("12.00"), "week", 1) == Fraction(12 * 52, 12)
    # Three yearly plans of 100: 25.00 exactly, not 3 × 8.33 = 24.99.
    assert round_to(3 * monthly_amount(Decimal("100.00"), "year", 1), 2) == Decimal("25.00")
    assert round_to(Fraction(1, 3), 2) == Decimal("0.33")
    assert round_to(Fraction(5, 1000), 2) == Decimal("0.00")  # half to even
    assert round_to(Fraction(15, 1000), 2) == Decimal("0.02")
    assert round_to(Fraction(1000), 0) == Decimal("1000")
