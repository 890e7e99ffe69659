"""The README's configuration reference and its settings example stay true to payments_gateway/conf.py."""

import ast
import dataclasses
import re
from pathlib import Path

from django.core.checks import run_checks
from django.test import override_settings

from payments_gateway.checks import CHECK_IDS
from payments_gateway.conf import DEFAULTS, NetworkConfig, gateway_settings

from .test_settings import XPUB

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def table_keys(heading: str) -> list[str]:
    """The first-column keys of the first table after ``heading``."""
    section = README[README.index(heading) :]
    table = re.search(r"\n(\|.*\|\n)+", section).group(0)
    return re.findall(r"^\| `([A-Za-z0-9_]+)` \|", table, flags=re.MULTILINE)


def test_reference_lists_every_key_in_check_id_order():
    # The README tells operators that E001, E002, ... follow the order of this table.
    assert table_keys("## Configuration reference") == list(DEFAULTS)
    assert [CHECK_IDS[k] for k in ("NETWORKS", "XPUB", "SESSION_TTL")] == [
        "payments_gateway.E001",
        "payments_gateway.E002",
        "payments_gateway.E003",
    ]


def test_reference_lists_every_network_key():
    keys = [f.name for f in dataclasses.fields(NetworkConfig) if f.name != "name"]
    assert sorted(table_keys("Keys of one `NETWORKS` entry")) == sorted(keys)


def test_settings_example_is_valid(monkeypatch):
    block = re.search(r"```python\n(import os\n.*?PAYMENTS_GATEWAY = \{.*?\n\}\n)```", README, flags=re.DOTALL)
    monkeypatch.setenv("PAYMENTS_GATEWAY_XPUB", XPUB)
    namespace: dict = {}
    exec(block.group(1), namespace)
    example = namespace["PAYMENTS_GATEWAY"]
    assert set(example) <= set(DEFAULTS)
    cluster = re.search(r"^Q_CLUSTER = (\{.*\})$", README, flags=re.MULTILINE)
    with override_settings(PAYMENTS_GATEWAY=example, Q_CLUSTER=ast.literal_eval(cluster.group(1))):
        gateway_settings.check_all()
        assert run_checks(tags=["payments_gateway"]) == []
        assert sorted(gateway_settings.networks) == ["base", "ethereum"]
        assert gateway_settings.network("ethereum").asset("USDC").decimals == 6
