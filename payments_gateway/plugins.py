"""One shape for every pluggable part: a base class, a registry of names, and a setting that names one.

Each seam (rate providers in :mod:`payments_gateway.pricing`, deposit schemes in
:mod:`payments_gateway.deposits`, signature schemes and event handlers of incoming webhooks) has one small base
class deriving from :class:`Plugin` with its own ``registry``. A subclass that sets ``name`` registers itself
under that name; a setting then holds either a registered name or the dotted path of a subclass, resolved by
:func:`load_plugin` (as django-payments' ``PAYMENT_VARIANTS`` and allauth's adapters are). The object built from
a setting is cached by its module with :func:`payments_gateway.conf.settings_cache`.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

P = TypeVar("P", bound="Plugin")


class Plugin:
    """Base of a seam's base class. The seam's base class declares ``registry: ClassVar[dict] = {}``."""

    name: ClassVar[str] = ""
    registry: ClassVar[dict[str, type[Any]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name and "registry" not in cls.__dict__:
            cls.registry[cls.name] = cls


def load_plugin(base: type[P], value: str, key: str) -> type[P]:
    """The subclass of ``base`` that ``value`` names (a registered name or a dotted path), or
    ``ImproperlyConfigured`` naming the setting ``key`` and the registered names."""
    found: Any = base.registry.get(value)
    if found is None:
        try:
            found = import_string(value)
        except ImportError as exc:
            known = ", ".join(sorted(base.registry))
            raise ImproperlyConfigured(
                f"{key}: cannot import {value!r} ({exc}); use a dotted path or one of: {known}."
            ) from None
    if not (isinstance(found, type) and issubclass(found, base)):
        raise ImproperlyConfigured(f"{key}: {value!r} is not a {base.__name__} subclass.")
    return found
