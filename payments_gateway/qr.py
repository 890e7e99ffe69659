"""QR codes rendered on our own server (never a third-party service): PNG bytes of a payment URI."""

from __future__ import annotations

import base64
from io import BytesIO


def qr_png(text: str, *, box_size: int = 8) -> bytes:
    """A PNG of ``text`` as a QR code (error correction M, 4-module quiet zone)."""
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=4)
    code.add_data(text)
    code.make(fit=True)
    buffer = BytesIO()
    code.make_image().save(buffer, format="PNG")
    return buffer.getvalue()


def qr_data_uri(text: str, **kwargs) -> str:
    """``data:image/png;base64,...`` for an ``<img src>`` that needs no second request."""
    return "data:image/png;base64," + base64.b64encode(qr_png(text, **kwargs)).decode()
