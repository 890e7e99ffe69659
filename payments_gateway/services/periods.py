"""Billing periods of subscriptions: their bounds, the intervals allowed, and what a plan is worth per month.

Every boundary is counted from the subscription's anchor (the start of its first period), never from the previous
boundary, so monthly periods follow the calendar as Stripe's do: anchored on Jan 31 they end on Feb 28 (29 in a
leap year), then Mar 31, Apr 30, May 31. A yearly period anchored on Feb 29 ends on Feb 28 of the next years and
on Feb 29 again in leap years. Days and weeks are 24-hour days (UTC, like every datetime here).

One period spans at most one year: ``interval_count`` is 1 to 365 days, 52 weeks, 12 months or 1 year.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from ..models import SubscriptionInterval

#: The largest ``interval_count`` of each interval: one period never spans more than a year.
MAX_INTERVAL_COUNT = {
    SubscriptionInterval.DAY: 365,
    SubscriptionInterval.WEEK: 52,
    SubscriptionInterval.MONTH: 12,
    SubscriptionInterval.YEAR: 1,
}
#: How many months one interval is worth, for monthly recurring revenue: a yearly plan counts 1/12 of its price
#: per month, a weekly one 52/12, a daily one 365/12.
MONTHS_PER_INTERVAL = {
    SubscriptionInterval.DAY: Fraction(12, 365),
    SubscriptionInterval.WEEK: Fraction(12, 52),
    SubscriptionInterval.MONTH: Fraction(1),
    SubscriptionInterval.YEAR: Fraction(12),
}


def interval_errors(interval: object, interval_count: object) -> dict[str, str]:
    """``{field: message}`` for an unknown ``interval`` or an ``interval_count`` outside 1..its maximum."""
    if interval not in SubscriptionInterval.values:
        return {"interval": f"unknown interval {interval!r}; use one of {', '.join(SubscriptionInterval.values)}."}
    high = MAX_INTERVAL_COUNT[SubscriptionInterval(interval)]
    if isinstance(interval_count, bool) or not isinstance(interval_count, int) or not 1 <= interval_count <= high:
        return {
            "interval_count": f"must be a whole number from 1 to {high} for interval {interval!r} "
            f"(one period spans at most a year), not {interval_count!r}."
        }
    return {}


def boundary(anchor: datetime, interval: str, interval_count: int, periods: int) -> datetime:
    """The moment ``periods`` whole periods after ``anchor`` (``periods=1``: the end of the first period)."""
    steps = interval_count * periods
    if interval == SubscriptionInterval.DAY:
        return anchor + timedelta(days=steps)
    if interval == SubscriptionInterval.WEEK:
        return anchor + timedelta(weeks=steps)
    months = steps * 12 if interval == SubscriptionInterval.YEAR else steps
    year, month = divmod(anchor.month - 1 + months, 12)
    year += anchor.year
    # The anchor's day, or the month's last day when the month is shorter (Jan 31 -> Feb 28).
    day = min(anchor.day, calendar.monthrange(year, month + 1)[1])
    return anchor.replace(year=year, month=month + 1, day=day)


def period_bounds(anchor: datetime, interval: str, interval_count: int, number: int) -> tuple[datetime, datetime]:
    """(start, end) of period ``number`` (1 for the first) of a subscription anchored at ``anchor``."""
    return (
        boundary(anchor, interval, interval_count, number - 1),
        boundary(anchor, interval, interval_count, number),
    )


def monthly_amount(amount: Decimal, interval: str, interval_count: int) -> Fraction:
    """What a plan of ``amount`` every ``interval_count`` ``interval``\\ s is worth per month, exactly."""
    return Fraction(amount) / (MONTHS_PER_INTERVAL[SubscriptionInterval(interval)] * interval_count)


def round_to(value: Fraction, exponent: int) -> Decimal:
    """``value`` rounded once, half to even, to ``exponent`` decimal places (a currency's minor unit); exact
    integer arithmetic, whatever the size of the value."""
    scaled = value * 10**exponent
    units, rest = divmod(scaled.numerator, scaled.denominator)
    if 2 * rest > scaled.denominator or (2 * rest == scaled.denominator and units % 2):
        units += 1
    return Decimal(units).scaleb(-exponent)
