"""Domain models, one module per domain; every public name is re-exported here."""

from .apikeys import APIKey, IdempotencyKey
from .chain import (
    AddressCounter,
    ChainCursor,
    DepositAddress,
    RpcErrorCount,
    ScannedBlock,
    Transfer,
    TransferKind,
    TransferReason,
    TransferResolution,
    TransferStatus,
    UnmatchedTransfer,
)
from .checkout import CheckoutSession, Customer, Order, OrderStatus, PaymentStatus, SessionStatus, SessionType
from .incoming import WebhookEvent, WebhookEventStatus, WebhookRequest
from .outgoing import DeliveryState, Event, SignatureFormat, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .refunds import Refund, RefundStatus
from .subscriptions import (
    CancellationReason,
    Subscription,
    SubscriptionInterval,
    SubscriptionPeriod,
    SubscriptionStatus,
)
from .sweeps import Sweep, SweepOrigin, SweepStatus, SweptAddress

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
    "Refund",
    "RefundStatus",
    "RpcErrorCount",
    "SessionStatus",
    "SessionType",
    "SignatureFormat",
    "Subscription",
    "SubscriptionInterval",
    "SubscriptionPeriod",
    "SubscriptionStatus",
    "Sweep",
    "SweepOrigin",
    "SweepStatus",
    "SweptAddress",
    "Transfer",
    "TransferReason",
    "TransferResolution",
    "TransferStatus",
    "UnmatchedTransfer",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookEventStatus",
    "WebhookRequest",
]
