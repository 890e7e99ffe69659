"""Finding the session a hosted page is about: every read first expires a session whose time is up."""

from __future__ import annotations

from django.http import Http404

from ..models import CheckoutSession
from ..services.payments import expire_if_due


def session_or_none(uuid, related=("order", "customer", "deposit_address")) -> CheckoutSession | None:
    """The session (expired first if its time is up), or None."""
    try:
        session = CheckoutSession.objects.select_related(*related).get(uuid=uuid)
    except CheckoutSession.DoesNotExist:
        return None
    return expire_if_due(session)


def session_or_404(uuid, **kwargs) -> CheckoutSession:
    session = session_or_none(uuid, **kwargs)
    if session is None:
        raise Http404(f"No payment {uuid}.")
    return session
