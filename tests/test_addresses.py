"""Deposit address allocation: from the xpub, a new address for every session (never reused), safe across
processes."""

from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from payments_gateway.chain.hd import derive_address
from payments_gateway.deposits import DepositScheme, allocate_address
from payments_gateway.models import AddressCounter, DepositAddress
from tests.factories import TEST_NETWORK, TEST_XPUB, make_deposit_address, make_session
from tests.processes import process_env, run_together

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
GATEWAY = {"XPUB": TEST_XPUB, "NETWORKS": {"test": TEST_NETWORK, "other": TEST_NETWORK}}


@pytest.fixture(autouse=True)
def gateway():
    with override_settings(PAYMENTS_GATEWAY=GATEWAY):
        yield


def allocate(network="test", busy_until=None, now=NOW):
    with transaction.atomic():
        return allocate_address(network, busy_until or now + timedelta(hours=48), now=now)


def test_first_addresses_are_the_wallets_receive_addresses():
    first, second = allocate(), allocate()
    assert (first.index, first.address) == (0, "0x9858EfFD232B4033E47d90003D41EC34EcaEda94")
    assert (second.index, second.address) == (1, derive_address(TEST_XPUB, 1))
    assert AddressCounter.objects.get(network="test").next_index == 2


def test_networks_count_separately():
    allocate("test")
    other = allocate("other")
    assert other.index == 0 and other.network == "other"


def test_an_address_is_never_given_to_a_second_session_however_long_ago_the_first_ended():
    first = allocate(busy_until=NOW + timedelta(hours=1))
    make_session(deposit_address=first, status="expired", expires_at=NOW)
    # A year after the first session's late window ended, a new session still gets a new address.
    later = NOW + timedelta(days=365)
    second = allocate(now=later, busy_until=later + timedelta(hours=48))
    assert (second.index, second.pk) == (1, DepositAddress.objects.get(index=1).pk)
    first.refresh_from_db()
    assert first.busy_until == NOW + timedelta(hours=1)  # the old address is left as it was
    assert DepositAddress.objects.count() == 2


def test_a_lost_counter_does_not_hand_out_an_index_twice():
    for _ in range(3):
        allocate()
    AddressCounter.objects.all().delete()
    assert allocate().index == 3


def test_unknown_network_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown network 'mainnet'; configured networks: other, test"):
        allocate("mainnet")
    assert not DepositAddress.objects.exists()


@pytest.mark.django_db(transaction=True)  # a plain django_db test already runs inside atomic()
def test_must_run_in_a_transaction():
    with pytest.raises(transaction.TransactionManagementError, match=r"inside transaction\.atomic\(\)"):
        allocate_address("test", NOW + timedelta(days=1))


def test_rollback_releases_the_index():
    with pytest.raises(RuntimeError), transaction.atomic():
        allocate_address("test", NOW + timedelta(days=1), now=NOW)
        raise RuntimeError("session creation failed")
    assert not DepositAddress.objects.exists()
    assert allocate().index == 0


@pytest.mark.django_db(transaction=True)
def test_two_processes_allocate_1000_distinct_addresses():
    """Two worker processes, 500 allocations each: no index or address is handed out twice, and none of the 40
    old addresses (their sessions long over) is handed out again."""
    past = timezone.now() - timedelta(days=1)
    for index in range(40):
        make_deposit_address(index=index, address=derive_address(TEST_XPUB, index), busy_until=past)
    AddressCounter.objects.create(network="test", next_index=40)

    # The worker reads the same settings as this process, so its NETWORKS must include "test".
    env = process_env(GATEWAY)
    results = run_together("tests.alloc_worker", ["test", "500"], env)

    got = results[0] + results[1]
    assert len(results[0]) == len(results[1]) == 500
    assert len({index for index, _ in got}) == 1000
    assert len({address for _, address in got}) == 1000
    # 1000 new, gapless after the 40 old ones, each the xpub's address at its index.
    assert sorted(index for index, _ in got) == list(range(40, 1040))
    assert DepositAddress.objects.filter(network="test").count() == 1040
    assert AddressCounter.objects.get(network="test").next_index == 1040
    for index, address in got[::50]:
        assert address == derive_address(TEST_XPUB, index)


class NotAScheme:
    """Not a DepositScheme: refused by name."""


class CountingScheme(DepositScheme):
    """A deposit scheme outside the app, named by its dotted path: address i is 0x…(i + 1)."""

    def address(self, index: int) -> str:
        return "0x" + f"{index + 1:040x}"


def test_the_network_s_deposit_scheme_makes_its_addresses():
    counting = {**TEST_NETWORK, "deposit_scheme": "tests.test_addresses.CountingScheme"}
    with override_settings(PAYMENTS_GATEWAY={**GATEWAY, "NETWORKS": {"test": counting, "other": TEST_NETWORK}}):
        first, second = allocate("test"), allocate("test")
        xpub = allocate("other")
    assert (first.address, second.address) == ("0x" + "0" * 39 + "1", "0x" + "0" * 39 + "2")
    assert first.scheme == "tests.test_addresses.CountingScheme"
    assert (xpub.scheme, xpub.address) == ("xpub", derive_address(TEST_XPUB, 0))


@pytest.mark.parametrize(
    ("scheme", "fragments"),
    [
        ("bitcoin", ["['deposit_scheme']: cannot import 'bitcoin'", "use a dotted path or one of: forwarder, xpub"]),
        ("tests.test_addresses.NotAScheme", ["['deposit_scheme']: 'tests.test_addresses.NotAScheme' is not a"]),
        (42, ["['deposit_scheme'] must be a scheme name such as 'xpub'"]),
    ],
)
def test_a_wrong_deposit_scheme_is_named_by_manage_py_check(scheme, fragments):
    network = {**TEST_NETWORK, "deposit_scheme": scheme}
    with override_settings(PAYMENTS_GATEWAY={**GATEWAY, "NETWORKS": {"test": network}}):
        errors = [e.msg for e in run_checks(tags=["payments_gateway"]) if e.id == "payments_gateway.E001"]
    assert len(errors) == 1
    for fragment in ["PAYMENTS_GATEWAY['NETWORKS']['test']", *fragments]:
        assert fragment in errors[0]
