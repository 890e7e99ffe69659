"""The merchant dashboard: one admin per model; logs (transfers, deliveries, incoming events) are read-only."""

from .apikeys import APIKeyAdmin
from .attempts import WebhookAttemptAdmin
from .chain import ChainCursorAdmin, DepositAddressAdmin, TransferAdmin
from .checkout import CheckoutSessionAdmin, CustomerAdmin, OrderAdmin
from .incoming import WebhookEventAdmin, WebhookRequestAdmin
from .outgoing import EventAdmin, WebhookDeliveryAdmin, WebhookEndpointAdmin
from .reconcile import NeedsAttentionAdmin, RefundAdmin
from .subscriptions import SubscriptionAdmin, SubscriptionPeriodAdmin
from .sweeps import SweepAdmin

__all__ = [
    "APIKeyAdmin",
    "ChainCursorAdmin",
    "CheckoutSessionAdmin",
    "CustomerAdmin",
    "DepositAddressAdmin",
    "EventAdmin",
    "NeedsAttentionAdmin",
    "OrderAdmin",
    "SubscriptionAdmin",
    "SubscriptionPeriodAdmin",
    "RefundAdmin",
    "SweepAdmin",
    "TransferAdmin",
    "WebhookAttemptAdmin",
    "WebhookDeliveryAdmin",
    "WebhookEndpointAdmin",
    "WebhookEventAdmin",
    "WebhookRequestAdmin",
]
