"""``PAYMENTS_GATEWAY["CHECKOUT_BRANDING"]``: the shop's name, logo and accent colour on the hosted pages."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from .values import sub_key

COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
# Characters that have no place in a URL we put in an attribute and a Content-Security-Policy header.
_URL_UNSAFE = re.compile(r"[\s\"'<>\\^`{|};,]")
BRANDING_KEYS = ("name", "logo_url", "accent_color")
MAX_NAME = 100


@dataclass(frozen=True)
class Branding:
    """What the hosted pages show of the shop. Empty values mean the gateway's neutral look."""

    name: str = ""
    logo_url: str = ""
    accent_color: str = ""

    @property
    def logo_origin(self) -> str:
        """``scheme://host[:port]`` of the logo (for the pages' ``img-src``), or ``""``."""
        if not self.logo_url:
            return ""
        parts = urlsplit(self.logo_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def text_on_accent(self) -> str:
        """Black or white, whichever reads better on the accent colour (WCAG contrast ratio)."""
        if not self.accent_color:
            return ""
        accent = _luminance(self.accent_color)
        on_white = (1.05) / (accent + 0.05)
        on_black = (accent + 0.05) / 0.05
        return "#ffffff" if on_white >= on_black else "#000000"


def parse_branding(value: Any, key: str) -> Branding:
    """Validate ``CHECKOUT_BRANDING``: ``{"name": str, "logo_url": "https://...", "accent_color": "#rrggbb"}``,
    every key optional; raise ``ImproperlyConfigured`` naming the bad key and the fix."""
    if not isinstance(value, dict):
        raise ImproperlyConfigured(
            f"{key} must be a dict like {{'name': 'My Shop', 'logo_url': 'https://shop.example/logo.png', "
            f"'accent_color': '#1a73e8'}}, not {type(value).__name__}."
        )
    unknown = [k for k in value if k not in BRANDING_KEYS]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(str(name), BRANDING_KEYS, n=1)
            hints.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
        raise ImproperlyConfigured(f"{key} has unknown key(s) {', '.join(hints)}; known: {', '.join(BRANDING_KEYS)}.")
    name = value.get("name", "")
    if not isinstance(name, str) or len(name) > MAX_NAME or "\x00" in name:
        raise ImproperlyConfigured(f"{sub_key(key, 'name')} must be text of at most {MAX_NAME} characters.")
    return Branding(
        name=name.strip(),
        logo_url=_logo_url(value.get("logo_url", ""), sub_key(key, "logo_url")),
        accent_color=_color(value.get("accent_color", ""), sub_key(key, "accent_color")),
    )


def _logo_url(value: Any, key: str) -> str:
    if value in ("", None):
        return ""
    fix = "give an absolute http(s) URL of an image, e.g. 'https://shop.example/static/logo.png'"
    if not isinstance(value, str) or len(value) > 2000 or _URL_UNSAFE.search(value):
        raise ImproperlyConfigured(f"{key} is not a URL we can use ({value!r}): {fix}.")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ImproperlyConfigured(f"{key} is not a valid URL ({value!r}): {fix}.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise ImproperlyConfigured(f"{key} must be an http(s) URL without user or password, not {value!r}: {fix}.")
    return value


def _color(value: Any, key: str) -> str:
    if value in ("", None):
        return ""
    if not isinstance(value, str) or not COLOR_RE.match(value):
        raise ImproperlyConfigured(
            f"{key} must be a colour written #rrggbb (six hex digits), e.g. '#1a73e8', not {value!r}."
        )
    return value.lower()


def _luminance(color: str) -> float:
    """WCAG relative luminance of ``#rrggbb`` (display maths, not money: floats are fine here)."""

    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(color[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
