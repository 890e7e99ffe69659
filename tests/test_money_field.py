"""On-chain amounts round-trip exactly, and compare exactly, on SQLite and PostgreSQL."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from payments_gateway.fields import UINT256_MAX
from payments_gateway.models import Transfer
from payments_gateway.money import format_units, from_base_units, sum_amounts, to_base_units

from .factories import make_transfer

pytestmark = pytest.mark.django_db

BIG = [UINT256_MAX, 10**30 + 1, 0, 1, 10**18, 2**64, 2**63 - 1]


def test_amounts_round_trip_exactly():
    for amount in BIG:
        make_transfer(amount=amount)
    stored = sorted(Transfer.objects.values_list("amount", flat=True))
    assert stored == sorted(BIG)
    assert all(type(v) is int for v in stored)
    assert Transfer.objects.get(amount=UINT256_MAX).amount == UINT256_MAX
    assert Transfer.objects.get(amount=10**30 + 1).amount == 10**30 + 1


def test_sql_comparisons_and_ordering_are_exact():
    for amount in BIG:
        make_transfer(amount=amount)
    # 10**30 and 10**30 + 1 are the same float: a float column could not tell them apart.
    assert not Transfer.objects.filter(amount=10**30).exists()
    assert Transfer.objects.filter(amount__gt=10**30).count() == 2
    assert Transfer.objects.filter(amount__gte=10**30 + 1, amount__lt=UINT256_MAX).count() == 1
    assert list(Transfer.objects.order_by("amount").values_list("amount", flat=True)) == sorted(BIG)
    assert Transfer.objects.filter(amount__in=[1, UINT256_MAX]).count() == 2


def test_sums_are_exact():
    make_transfer(amount=10**30 + 1)
    make_transfer(amount=10**30 + 1)
    make_transfer(amount=UINT256_MAX - 2 * (10**30 + 1))
    assert sum_amounts(Transfer.objects.all()) == UINT256_MAX


def test_out_of_range_and_non_integer_values_are_refused():
    for bad in [UINT256_MAX + 1, -1, Decimal("1.5"), "12abc"]:
        with pytest.raises(ValidationError), transaction.atomic():
            make_transfer(amount=bad)
    assert Transfer.objects.count() == 0


def test_transfer_is_unique_per_network_tx_and_log_index():
    first = make_transfer(amount=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_transfer(amount=2, tx_hash=first.tx_hash)  # same network, transaction and log index
    assert Transfer.objects.get().amount == 1
    assert timezone.now() - Transfer.objects.get().detected_at < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("text", "decimals", "units"),
    [
        ("1.5", 18, 1_500_000_000_000_000_000),
        ("0.000001", 6, 1),
        ("123456789012345678901234567890", 18, 123456789012345678901234567890 * 10**18),
    ],
)
def test_decimal_conversions_are_exact(text, decimals, units):
    assert to_base_units(Decimal(text), decimals) == units
    assert from_base_units(units, decimals) == Decimal(text)
    assert format_units(units, decimals) == text


def test_conversion_rounds_up_in_the_merchants_favour():
    assert to_base_units(Decimal("0.0000001"), 6) == 1
    assert to_base_units(Decimal("1.0000001"), 6) == 1_000_001
