"""Deposit addresses from the xpub equal what the merchant's wallet derives from its mnemonic."""

import pytest
from bip_utils import Bip32Secp256k1, Bip39SeedGenerator
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from payments_gateway.chain.hd import InvalidXpubError, derive_address, derive_addresses

MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
XPUB = "xpub6DCoCpSuQZB2jawqnGMEPS63ePKWkwWPH4TU45Q7LPXWuNd8TMtVxRrgjtEshuqpK3mdhaWHPFsBngh5GFZaM6si3yZdUsT8ddYM3PwnATt"

Account.enable_unaudited_hdwallet_features()


def wallet_address(index: int) -> str:
    """What a wallet holding the mnemonic shows as receive address ``index`` (test-only: uses the secret)."""
    return Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}").address


def test_known_vector():
    assert derive_address(XPUB, 0) == "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"


def test_xpub_is_the_mnemonics_account_key():
    seed = Bip39SeedGenerator(MNEMONIC).Generate()
    account = Bip32Secp256k1.FromSeed(seed).DerivePath("m/44'/60'/0'")
    assert account.PublicKey().ToExtended() == XPUB


@pytest.mark.parametrize("index", [*range(50), 1000, 65_535, 1_000_003, 2**31 - 1])
def test_matches_the_wallet(index):
    assert derive_address(XPUB, index) == wallet_address(index)


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=0, max_value=2**31 - 1))
def test_matches_the_wallet_anywhere(index):
    assert derive_address(XPUB, index) == wallet_address(index)


def test_addresses_are_eip55_and_distinct():
    addresses = derive_addresses(XPUB, 0, 200)
    assert len(set(addresses)) == 200
    assert derive_addresses(XPUB, 10, 3) == addresses[10:13]
    for address in addresses[:20]:
        assert address.startswith("0x") and len(address) == 42
        assert address != address.lower() and address != address.upper()


@pytest.mark.parametrize("index", [-1, 2**31, 2**32, 1.0, "3", True, None])
def test_bad_index(index):
    with pytest.raises(ValueError, match=r"derivation index must be a whole number 0\.\.2147483647"):
        derive_address(XPUB, index)


def test_private_key_is_refused():
    seed = Bip39SeedGenerator(MNEMONIC).Generate()
    xprv = Bip32Secp256k1.FromSeed(seed).DerivePath("m/44'/60'/0'").PrivateKey().ToExtended()
    with pytest.raises(InvalidXpubError, match="private"):
        derive_address(xprv, 0)


def test_wrong_depth_is_refused():
    receive_level = Bip32Secp256k1.FromExtendedKey(XPUB).ChildKey(0).PublicKey().ToExtended()
    with pytest.raises(InvalidXpubError, match="depth 4, not the account level"):
        derive_address(receive_level, 0)


@pytest.mark.parametrize("bad", ["", "xpub-not-a-key", XPUB[:-1] + ("A" if XPUB[-1] != "A" else "B"), None])
def test_malformed_xpub(bad):
    with pytest.raises(InvalidXpubError):
        derive_address(bad, 0)
