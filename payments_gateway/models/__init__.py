"""Domain models, one module per domain; every public name is re-exported here."""

from .apikeys import APIKey, IdempotencyKey
from .chain import (
    AddressCounter,
    ChainCursor,
    DepositAddress,
    ScannedBlock,
    Transfer,
    TransferKind,
    TransferStatus,
)
from .checkout import CheckoutSession, Customer, Order, OrderStatus, PaymentStatus, SessionStatus, SessionType
from .incoming import WebhookEvent, WebhookEventStatus, WebhookRequest
from .outgoing import DeliveryState, Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .subscriptions import (
    CancellationReason,
    Subscription,
    SubscriptionInterval,
    SubscriptionPeriod,
    SubscriptionStatus,
)

__all__ = [
    "AddressCounter",
    "ScannedBlock",
    "TransferKind",
    "APIKey",
    "CancellationReason",
    "ChainCursor",
    "CheckoutSession",
    "Customer",
    "DeliveryState",
    "DepositAddress",
    "Event",
    "IdempotencyKey",
    "Order",
    "OrderStatus",
    "PaymentStatus",
    "SessionStatus",
    "SessionType",
    "Subscription",
    "SubscriptionInterval",
    "SubscriptionPeriod",
    "SubscriptionStatus",
    "Transfer",
    "TransferStatus",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookEventStatus",
    "WebhookRequest",
]
