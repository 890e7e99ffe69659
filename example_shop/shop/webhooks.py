"""The shop's receiver of the gateway's webhooks: verify, record each ``webhook-id`` once, fulfil.

This is what a merchant writes on their side. The signature is checked with the official ``standardwebhooks``
library against the raw body before anything is parsed or stored; each webhook id is recorded once, so a retry or
a redelivery of an event already handled answers 200 and changes nothing.
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from payments_gateway.models import Order, OrderStatus

from .models import ProcessedWebhook

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def receive(request):
    """``POST /shop/webhooks/``: 400 on a bad signature; 200 once processed (or already processed)."""
    try:
        event = Webhook(settings.SHOP_WEBHOOK_SECRET).verify(request.body, dict(request.headers))
    except (WebhookVerificationError, ValueError) as exc:
        return JsonResponse({"error": f"webhook not verified: {exc}"}, status=400)
    webhook_id = request.headers["webhook-id"]  # present: verification requires it
    try:
        with transaction.atomic():
            record = ProcessedWebhook.objects.create(webhook_id=webhook_id, event_type=event.get("type", ""))
            result = handle(event, record)
    except IntegrityError:
        return JsonResponse({"status": "duplicate", "id": webhook_id})
    return JsonResponse({"status": result, "id": webhook_id})


def handle(event: dict, record: ProcessedWebhook) -> str:
    """Act on one verified event (inside the transaction that records it). Returns what was done."""
    if event.get("type") != "payment.completed":
        return "ignored"
    order_ref = (event.get("data") or {}).get("order") or {}
    # Look the order up by its uuid (not only the reference): sample test events never match a real order.
    try:
        order_uuid = uuid.UUID(str(order_ref.get("uuid")))
    except ValueError:
        order_uuid = None
    order = Order.objects.select_for_update().filter(uuid=order_uuid).first() if order_uuid else None
    if order is None:
        logger.warning("payment.completed for an unknown order %s", order_ref)
        return "unknown order"
    record.order = order
    record.save(update_fields=["order"])
    if order.status != OrderStatus.PAID:
        order.status = OrderStatus.PAID
        order.save(update_fields=["status", "updated"])
    return "order paid"
