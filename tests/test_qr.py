"""Our QR rendering: the same matrices as the qrcode library, decodable, and fast enough to draw per session."""

import subprocess

import pytest
from qrcode import QRCode
from qrcode.constants import ERROR_CORRECT_M

from payments_gateway.qr import masked_candidates, qr_png, qr_rows

URIS = [
    "ethereum:0x9858EfFD232B4033E47d90003D41EC34EcaEda94@1?value=3333333333333334",
    "ethereum:0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48@1/transfer?address=0x9858EfFD232B4033E47d90003D41EC34EcaE"
    "da94&uint256=19990000",
    "x",
    "ethereum:" + "0x" + "ab" * 20 + "@31337?value=" + str(2**256 - 1) + "&" + "z" * 200,  # version >= 7
]


def library_rows(text: str, mask: int) -> list[str]:
    code = QRCode(error_correction=ERROR_CORRECT_M, border=0, mask_pattern=mask)
    code.add_data(text)
    code.make(fit=True)
    return ["".join("1" if m else "0" for m in row) for row in code.modules]


@pytest.mark.parametrize("uri", URIS)
def test_each_masked_matrix_is_exactly_the_librarys(uri):
    _, candidates = masked_candidates(uri)
    for mask, (_, strings) in enumerate(candidates):
        assert strings == library_rows(uri, mask), mask
    assert qr_rows(uri) in [strings for _, strings in candidates]


@pytest.mark.parametrize("uri", URIS)
def test_png_decodes_to_the_text(uri):
    png = qr_png(uri)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    decoded = subprocess.run(["zbarimg", "--raw", "-q", "-"], input=png, capture_output=True, check=True)
    assert decoded.stdout.decode().strip() == uri


@pytest.mark.parametrize("uri", URIS)
def test_masks_are_scored_like_qrcode_and_the_lowest_penalty_wins(uri):
    from qrcode.util import lost_point

    from payments_gateway.qr import _penalty

    n, candidates = masked_candidates(uri)
    ours = [_penalty(rows, strings, n) for rows, strings in candidates]
    theirs = [lost_point([[ch == "1" for ch in row] for row in strings]) for _, strings in candidates]
    assert ours == theirs
    assert qr_rows(uri) == candidates[ours.index(min(ours))][1]
