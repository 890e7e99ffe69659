"""Deposit address allocation: from the xpub, never shared while busy, reused after, safe across processes."""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from payments_gateway.chain.hd import derive_address
from payments_gateway.deposits import CLOCK_SLACK, DepositScheme, allocate_address
from payments_gateway.models import AddressCounter, DepositAddress
from tests.factories import TEST_NETWORK, TEST_XPUB, make_deposit_address, make_session

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


def test_not_reused_while_busy_then_reused_oldest_first():
    a = allocate(busy_until=NOW + timedelta(hours=10))
    b = allocate(busy_until=NOW + timedelta(hours=5))
    # Still busy (a late payment could arrive): a third session gets a new address.
    c = allocate(now=NOW + timedelta(hours=4, minutes=59))
    assert c.index == 2
    # b's window has passed: b is reused (it freed up first), a is still busy.
    later = NOW + timedelta(hours=6)
    reused = allocate(now=later, busy_until=later + timedelta(hours=48))
    assert reused.pk == b.pk
    reused.refresh_from_db()
    assert reused.busy_until == later + timedelta(hours=48)
    assert allocate(now=later).index == 3  # a (until +10 h) and c (+48 h) are still busy
    assert DepositAddress.objects.get(pk=a.pk).busy_until == NOW + timedelta(hours=10)


def test_not_reused_before_busy_until_plus_the_clock_slack():
    # The scanner credits a payment to the newest session created up to CLOCK_SLACK after its block time: a late
    # payment to the old session mined just before busy_until must not find a new session on the address.
    old = allocate(busy_until=NOW + timedelta(hours=1))
    just_after = NOW + timedelta(hours=1) + CLOCK_SLACK - timedelta(seconds=1)
    assert allocate(now=just_after).pk != old.pk
    after_slack = NOW + timedelta(hours=1) + CLOCK_SLACK + timedelta(seconds=1)
    assert allocate(now=after_slack).pk == old.pk


def test_address_with_an_open_session_is_never_reused():
    address = allocate(busy_until=NOW + timedelta(hours=1))
    make_session(deposit_address=address, expires_at=NOW + timedelta(hours=2))
    # busy_until has passed but the session was never expired (e.g. workers down): keep the address.
    assert allocate(now=NOW + timedelta(hours=3)).pk != address.pk


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
    """Two worker processes, 500 allocations each (some reusing freed addresses, most new): no index or
    address is handed out twice."""
    # 40 addresses whose busy window is over: both workers compete for them through skip_locked.
    past = timezone.now() - timedelta(days=1)
    for index in range(40):
        make_deposit_address(index=index, address=derive_address(TEST_XPUB, index), busy_until=past)
    AddressCounter.objects.create(network="test", next_index=40)

    db = connection.settings_dict
    if connection.vendor == "postgresql":
        url = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    else:
        url = f"sqlite:///{db['NAME']}"
    env = os.environ | {"DATABASE_URL": url, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    # The worker reads the same settings as this process, so its NETWORKS must include "test".
    env["PAYMENTS_GATEWAY_TEST_OVERRIDE"] = json.dumps(GATEWAY)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.alloc_worker", "test", "500"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err
        results.append(json.loads(out))

    got = results[0] + results[1]
    assert len(results[0]) == len(results[1]) == 500
    assert len({index for index, _ in got}) == 1000
    assert len({address for _, address in got}) == 1000
    # 40 reused + 960 new, gapless, each the xpub's address at its index.
    assert sorted(index for index, _ in got) == list(range(1000))
    assert DepositAddress.objects.filter(network="test").count() == 1000
    assert AddressCounter.objects.get(network="test").next_index == 1000
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
