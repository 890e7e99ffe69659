"""Deposit addresses derived from the merchant's account xpub, by public BIP32 derivation only.

The merchant's wallet exports the account-level extended public key (m/44'/60'/0'); address ``i`` is
m/44'/60'/0'/0/i, the same address the wallet shows as its ``i``-th receive address. The app never reads or
stores a private key, a seed or a mnemonic: an xpub can find addresses but never spend from them.
"""

from __future__ import annotations

from functools import lru_cache

from bip_utils import Bip32KeyError, Bip32Secp256k1, EthAddrEncoder

#: Derivation indexes are non-hardened (public derivation): 0 .. 2**31 - 1.
MAX_INDEX = 2**31 - 1
ACCOUNT_DEPTH = 3  # m / 44' / 60' / 0'
EXTERNAL_CHAIN = 0  # BIP44 change level: 0 = receive addresses


class InvalidXpubError(ValueError):
    """The extended key is not a usable account-level xpub."""


def derive_address(xpub: str, index: int) -> str:
    """EIP-55 address at m/44'/60'/0'/0/``index`` from the account-level ``xpub`` (m/44'/60'/0').

    Raises ``InvalidXpubError`` for a malformed, private or wrong-depth key and ``ValueError`` for an index
    outside 0 .. 2**31 - 1.
    """
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_INDEX:
        raise ValueError(f"derivation index must be a whole number 0..{MAX_INDEX}, not {index!r}")
    node = _receive_node(xpub)
    return EthAddrEncoder.EncodeKey(node.ChildKey(index).PublicKey().KeyObject())


def derive_addresses(xpub: str, start: int, count: int) -> list[str]:
    """Addresses ``start`` .. ``start + count - 1`` (see ``derive_address``)."""
    return [derive_address(xpub, index) for index in range(start, start + count)]


@lru_cache(maxsize=8)
def _receive_node(xpub: str) -> Bip32Secp256k1:
    """The parsed m/44'/60'/0'/0 node; cached because parsing and one derivation cost more than the leaf."""
    if not isinstance(xpub, str) or not xpub.strip():
        raise InvalidXpubError("no xpub given: set PAYMENTS_GATEWAY['XPUB'] to the wallet's account xpub")
    if xpub.startswith(("xprv", "tprv")):
        raise InvalidXpubError("that is an extended *private* key: give the account xpub; never a private key")
    try:
        account = Bip32Secp256k1.FromExtendedKey(xpub.strip())
    except Exception as exc:  # bip_utils raises unrelated types (Base58ChecksumError, Bip32KeyError, ValueError)
        raise InvalidXpubError(f"not a valid extended public key: {exc}") from None
    if not account.IsPublicOnly():
        raise InvalidXpubError("that is an extended *private* key: give the account xpub; never a private key")
    depth = account.Depth().ToInt()
    if depth != ACCOUNT_DEPTH:
        raise InvalidXpubError(
            f"the xpub is at depth {depth}, not the account level m/44'/60'/0' (depth {ACCOUNT_DEPTH}): export the "
            "account's extended public key from the wallet"
        )
    try:
        return account.ChildKey(EXTERNAL_CHAIN)
    except Bip32KeyError as exc:  # practically impossible (invalid child, probability < 2**-127)
        raise InvalidXpubError(f"cannot derive the receive chain from this xpub: {exc}") from None
