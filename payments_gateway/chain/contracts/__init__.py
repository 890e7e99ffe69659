"""Compiled contracts shipped with the app (sources in ``src/``, artifacts in ``artifacts/``).

The artifacts are committed JSON (``abi``, ``bytecode``, ``deployedBytecode``) built by
``scripts/build_contracts.py`` (``make contracts``); the app only reads them, it never needs a compiler.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

ERC20_ABI_NAME = "TestToken"

#: Contracts with a committed artifact.
NAMES = (
    "TestToken", "Multicall3", "MockV3Aggregator", "Forwarder", "ForwarderFactory", "NoReturnToken", "TestNFT",
    "TetherLikeToken",
)  # fmt: skip


@cache
def load_artifact(name: str) -> dict[str, Any]:
    """The compiled artifact of contract ``name`` (``abi``, ``bytecode``, ...). ``ValueError`` if unknown."""
    if name not in NAMES:
        raise ValueError(f"unknown contract {name!r}; known: {', '.join(NAMES)}")
    text = resources.files(__package__).joinpath("artifacts", f"{name}.json").read_text()
    return json.loads(text)


def abi(name: str) -> list[dict[str, Any]]:
    """The ABI of contract ``name``; ``abi("TestToken")`` is a complete ERC-20 ABI."""
    return load_artifact(name)["abi"]
