"""QR codes rendered on our own server (never a third-party service): PNG bytes of a payment URI.

The ``qrcode`` library encodes the data (version, error correction, data placement). Two steps it does slowly
are done here instead, because a checkout page renders one code per session and the code was most of the cost
of creating a session:

- choosing the mask: ``qrcode`` re-places all data for each of the 8 masks and scores each with per-module Python
  loops (~20 ms for an EIP-681 URI). We place the data once, derive the 8 masked matrices as bit rows (a mask only
  flips data modules), and score them with the same four ISO/IEC 18004 penalty rules on strings and integers.
- the PNG: a 1-bit grayscale PNG written directly (zlib), instead of drawing a Pillow image.

Each candidate is ``qrcode``'s own matrix for that mask and gets ``qrcode``'s own penalty score (both tested).
One difference: we score the finished symbols, format information included (as ISO/IEC 18004 and ZXing do);
``qrcode`` scores them with the format bits blank, so now and then the two pick different (equally valid) masks.
"""

from __future__ import annotations

import base64
import re
import struct
import zlib
from functools import lru_cache

_RUN = re.compile(r"0{5,}|1{5,}")


@lru_cache(maxsize=512)
def qr_png(text: str, *, box_size: int = 8, border: int = 4) -> bytes:
    """A PNG of ``text`` as a QR code (error correction M, ``border``-module quiet zone). Cached per process:
    a page view, its ``qr.png`` and later polls draw the same code."""
    return png_from_rows(qr_rows(text), box_size=box_size, border=border)


def qr_data_uri(text: str, **kwargs) -> str:
    """``data:image/png;base64,...`` for an ``<img src>`` that needs no second request."""
    return "data:image/png;base64," + base64.b64encode(qr_png(text, **kwargs)).decode()


def qr_rows(text: str) -> list[str]:
    """The QR code of ``text`` as rows of ``"1"`` (dark) and ``"0"``, without quiet zone, best mask applied."""
    n, candidates = masked_candidates(text)
    scored = [(_penalty(rows, strings, n), mask) for mask, (rows, strings) in enumerate(candidates)]
    return candidates[min(scored)[1]][1]


def masked_candidates(text: str) -> tuple[int, list[tuple[list[int], list[str]]]]:
    """``(size, [(rows as ints, rows as strings) for mask 0..7])``: the data placed once, then each mask."""
    from qrcode import QRCode
    from qrcode.constants import ERROR_CORRECT_M

    code = QRCode(error_correction=ERROR_CORRECT_M, border=0)
    code.add_data(text)
    code.best_fit(start=None)
    code.makeImpl(False, 0)
    layout = _layout(code.version, code.error_correction)
    n = code.modules_count
    placed = [int("".join(["1" if m else "0" for m in row]), 2) for row in code.modules]
    # Data bits before masking: what mask 0 flipped, flipped back.
    raw = [row ^ layout.patterns[0][r] for r, row in enumerate(placed)]
    candidates = []
    for mask in range(8):
        rows = [layout.fixed[mask][r] | ((raw[r] ^ layout.patterns[mask][r]) & layout.data[r]) for r in range(n)]
        candidates.append((rows, [format(row, f"0{n}b") for row in rows]))
    return n, candidates


def png_from_rows(rows: list[str], *, box_size: int = 8, border: int = 4) -> bytes:
    """A 1-bit grayscale PNG: each ``"1"`` a black ``box_size`` square, with a white quiet zone."""
    width = (len(rows[0]) + 2 * border) * box_size
    pad = "1" * (-width % 8)  # each PNG row is padded to whole bytes
    white = b"\x00" + int("1" * width + pad, 2).to_bytes((width + 7) // 8, "big")
    quiet = "0" * border
    scanlines = [white] * (border * box_size)
    for row in rows:
        # PNG grayscale: 0 is black, so a dark module ("1") becomes 0 bits.
        bits = (quiet + row + quiet).translate({ord("1"): "0" * box_size, ord("0"): "1" * box_size}) + pad
        scanlines.extend([b"\x00" + int(bits, 2).to_bytes(len(bits) // 8, "big")] * box_size)
    scanlines.extend([white] * (border * box_size))
    header = struct.pack(">IIBBBBB", width, width, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(scanlines), 6))
        + _chunk(b"IEND", b"")
    )


class _Layout:
    """Per (version, error correction): which modules hold data, each mask's pattern on them, and the fixed
    (function + format + version) modules as written for each mask — all as one int per row."""

    def __init__(self, data: list[int], patterns: list[list[int]], fixed: list[list[int]]) -> None:
        self.data, self.patterns, self.fixed = data, patterns, fixed


@lru_cache(maxsize=64)
def _layout(version: int, error_correction: int) -> _Layout:
    from qrcode import QRCode
    from qrcode.main import copy_2d_array, precomputed_qr_blanks
    from qrcode.util import mask_func

    n = version * 4 + 17
    fixed: list[list[int]] = []
    data: list[int] = []
    for mask in range(8):
        code = QRCode(version=version, error_correction=error_correction, border=0)
        code.modules_count = n
        code.modules = copy_2d_array(precomputed_qr_blanks[version])
        code.setup_type_info(False, mask)
        if version >= 7:
            code.setup_type_number(False)
        fixed.append([int("".join("1" if m else "0" for m in row), 2) for row in code.modules])
        if mask == 0:
            data = [int("".join("1" if m is None else "0" for m in row), 2) for row in code.modules]
    patterns = []
    for mask in range(8):
        flip = mask_func(mask)
        rows = [int("".join("1" if flip(r, c) else "0" for c in range(n)), 2) & data[r] for r in range(n)]
        patterns.append(rows)
    return _Layout(data, patterns, fixed)


def _penalty(rows: list[int], strings: list[str], n: int) -> int:
    """ISO/IEC 18004 mask penalty: runs (N1), 2x2 blocks (N2), finder-like patterns (N3), dark balance (N4)."""
    # Rows and columns in one string, "2"-separated so no run or pattern spans two lines: one regex pass each.
    lines = "2".join((*strings, *("".join(col) for col in zip(*strings, strict=True))))
    runs = _RUN.findall(lines)
    score = sum(map(len, runs)) - 2 * len(runs)
    # Neither pattern can overlap itself, so str.count (fast, non-overlapping) counts every occurrence.
    score += 40 * (lines.count("10111010000") + lines.count("00001011101"))
    inner = (1 << (n - 1)) - 1
    for upper, lower in zip(rows, rows[1:], strict=False):
        same = ~(upper ^ lower)
        score += 3 * (~(upper ^ (upper >> 1)) & same & (same >> 1) & inner).bit_count()
    dark = sum(row.bit_count() for row in rows)
    score += 10 * (abs(dark * 100 // (n * n) - 50) // 5)
    return score


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
