"""Forwarder deposit addresses: CREATE2 addresses of ``ForwarderFactory`` that can only ever pay one treasury.

Deposit address ``salt`` of a treasury is ``CREATE2(factory, salt, init_code(treasury))``; the treasury is the
``PUSH20`` immediate of the init code, so the address commits to it. It holds no code until it is swept, and none
after (the init code moves the funds and self-destructs in the creating transaction): plain 21,000-gas ETH sends
and token transfers to it always work. The contract, its design and the opcode table of the init code are in
``contracts/src/ForwarderFactory.sol``; this module is its offline half::

    address = deposit_address(factory, treasury, index)                  # no RPC
    assert factory_deposit_addresses(rpc_call, factory, treasury, [index]) == [address]
    tx = {"to": factory, "data": sweep_calldata(treasury, usdc, [3, 7, 42])}   # signed by any funded key

``rpc_call(method, params)`` is any raw JSON-RPC function: ``RPCClient.call`` (``chain.rpc``) or
``DevChain.rpc``. Salts are the deposit indexes (0 .. 2**256 - 1); a sweep takes them strictly increasing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector, keccak, to_canonical_address, to_checksum_address

#: ``asset`` of a sweep that moves ETH only (every sweep also moves the addresses' ETH).
ETH = "0x0000000000000000000000000000000000000000"

#: The deposit init code is ``PUSH20 treasury`` + this tail; identical to ``INIT_CODE_TAIL`` in
#: ForwarderFactory.sol (tests compare it with the factory's own ``initCode``). Never change it: every deposit
#: address of every deployed factory depends on these bytes.
INIT_CODE_TAIL = bytes.fromhex(
    "60205f5f5f335afa5f510280156068576370a082315f5230602052602060406024601c845afa604051021560685763"
    "a9059cbb5f528160205260205f6044601c5f855af13d155f5160011417166068575f5ffd5b50ff"
)
_PUSH20 = b"\x73"
_MAX_SALT = 2**256 - 1

_SWEEP = function_signature_to_4byte_selector("sweep(address,address,uint256[])")
#: The first 4 bytes (hex) of every ``sweep`` call's data.
SWEEP_SELECTOR = "0x" + _SWEEP.hex()
_DEPOSIT_ADDRESSES = function_signature_to_4byte_selector("depositAddresses(address,uint256[])")
#: topic0 of ``Swept(address,address,uint256,uint256)`` and ``SweepFailed(address,address,uint256)``.
SWEPT_TOPIC = "0x" + keccak(text="Swept(address,address,uint256,uint256)").hex()
SWEEP_FAILED_TOPIC = "0x" + keccak(text="SweepFailed(address,address,uint256)").hex()

RPCCall = Callable[[str, Sequence[Any]], Any]


def deposit_address(factory: str, treasury: str, salt: int | bytes) -> str:
    """The checksummed deposit address of ``salt`` (a deposit index, or 32 bytes) for ``treasury``, computed
    offline; equal to ``ForwarderFactory.depositAddress(treasury, salt)`` on chain."""
    return _create2(to_canonical_address(factory), _salt_bytes(salt), init_code_hash(treasury))


def deposit_addresses(factory: str, treasury: str, salts: Iterable[int | bytes]) -> list[str]:
    """``deposit_address`` of each salt (the init-code hash is computed once)."""
    code_hash = init_code_hash(treasury)
    deployer = to_canonical_address(factory)
    return [_create2(deployer, _salt_bytes(salt), code_hash) for salt in salts]


def init_code(treasury: str) -> bytes:
    """The init code of every deposit address of ``treasury`` (107 bytes). ``ValueError`` for the zero address,
    which the factory refuses (the funds would be burnt)."""
    raw = to_canonical_address(treasury)
    if raw == bytes(20):
        raise ValueError("the treasury cannot be the zero address")
    return _PUSH20 + raw + INIT_CODE_TAIL


def init_code_hash(treasury: str) -> bytes:
    return keccak(init_code(treasury))


def sweep_calldata(treasury: str, asset: str | None, salts: Iterable[int | bytes]) -> str:
    """``data`` of a transaction to the factory that sweeps ``asset`` (a token address; ``None`` or ``ETH`` for
    ETH only) and all ETH from the deposit addresses of ``salts`` to ``treasury``. Salts are sorted and must be
    distinct: the same address twice in one transaction would waste the whole gas limit (see the contract)."""
    ordered = sorted(_salt_int(salt) for salt in salts)
    if len(set(ordered)) != len(ordered):
        raise ValueError("a salt appears twice: sweep each deposit address once per transaction")
    init_code(treasury)  # the same checks as the factory, before anything is signed
    args = encode(["address", "address", "uint256[]"], [treasury, asset or ETH, ordered])
    return "0x" + (_SWEEP + args).hex()


def decode_sweep_calldata(data: str) -> tuple[str, str, list[int]]:
    """``(treasury, asset, salts)`` of a ``sweep`` call's ``data`` (``asset`` is :data:`ETH` for ETH only), to
    tell which deposit addresses a sweep someone else sent collected. ``ValueError`` if it is not a sweep call."""
    if not isinstance(data, str) or not data.startswith(SWEEP_SELECTOR):
        raise ValueError("not a sweep call")
    try:
        treasury, asset, salts = decode(["address", "address", "uint256[]"], bytes.fromhex(data[10:]))
    except Exception as exc:  # eth_abi raises several types for malformed calldata
        raise ValueError(f"malformed sweep calldata: {exc}") from None
    return to_checksum_address(treasury), to_checksum_address(asset), list(salts)


def factory_deposit_addresses(
    rpc_call: RPCCall, factory: str, treasury: str, salts: Sequence[int | bytes], block: str = "latest"
) -> list[str]:
    """The factory's own prediction of the deposit addresses of ``salts`` (one ``eth_call``), for checking the
    offline computation against the deployed contract. Raises ``ValueError`` if ``factory`` has no code."""
    if rpc_call("eth_getCode", [to_checksum_address(factory), block]) in ("0x", "", None):
        raise ValueError(f"no contract at the forwarder factory address {factory}")
    args = encode(["address", "uint256[]"], [treasury, [_salt_int(salt) for salt in salts]])
    call = {"to": to_checksum_address(factory), "data": "0x" + (_DEPOSIT_ADDRESSES + args).hex()}
    result = rpc_call("eth_call", [call, block])
    (addresses,) = decode(["address[]"], bytes.fromhex(result.removeprefix("0x")))
    return [to_checksum_address(address) for address in addresses]


def parse_sweep_logs(logs: Iterable[dict[str, Any]], factory: str) -> dict[str, Any]:
    """What a sweep receipt's ``logs`` say: ``{"addresses": n, "amount": base units the treasury received,
    "failed_salts": [...]}`` from the factory's ``Swept`` / ``SweepFailed`` events. ``logs`` are raw JSON-RPC log
    dicts (hex strings) or web3's (bytes); the ETH a sweep moves has no other record than ``Swept``."""
    result: dict[str, Any] = {"addresses": 0, "amount": 0, "failed_salts": []}
    factory = factory.lower()
    for log in logs:
        if str(log["address"]).lower() != factory:
            continue
        topic = _hex(log["topics"][0])
        data = bytes.fromhex(_hex(log["data"]).removeprefix("0x"))
        if topic == SWEPT_TOPIC:
            count, amount = decode(["uint256", "uint256"], data)
            result["addresses"] += count
            result["amount"] += amount
        elif topic == SWEEP_FAILED_TOPIC:
            result["failed_salts"].append(decode(["uint256"], data)[0])
    return result


# --- helpers ----------------------------------------------------------------------------------------


def _create2(deployer: bytes, salt: bytes, code_hash: bytes) -> str:
    return to_checksum_address(keccak(b"\xff" + deployer + salt + code_hash)[12:])


def _salt_int(salt: int | bytes) -> int:
    if isinstance(salt, bytes | bytearray):
        if len(salt) != 32:
            raise ValueError(f"a salt given as bytes must be 32 bytes long, not {len(salt)}")
        return int.from_bytes(salt, "big")
    if isinstance(salt, bool) or not isinstance(salt, int) or not 0 <= salt <= _MAX_SALT:
        raise ValueError(f"a salt must be a whole number 0 .. 2**256 - 1 or 32 bytes, not {salt!r}")
    return salt


def _salt_bytes(salt: int | bytes) -> bytes:
    return _salt_int(salt).to_bytes(32, "big")


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text
