from django.apps import AppConfig


class PaymentsGatewayConfig(AppConfig):
    name = "payments_gateway"
    verbose_name = "Crypto payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.apps import apps
        from django.db.models.signals import post_migrate

        from . import (
            checks,  # noqa: F401  (registers the system checks)
            signals,  # noqa: F401  (defines the signals; receivers connect in their own apps)
        )
        from .schedules import ensure_schedules_after_migrate

        if apps.is_installed("django_q"):
            post_migrate.connect(ensure_schedules_after_migrate, sender=self)

        # Outgoing webhooks: start delivering each event as soon as it commits.
        from .webhooks.outgoing.delivery import on_event_emitted

        signals.event_emitted.connect(on_event_emitted, dispatch_uid="payments_gateway.webhooks.kick")

        # The checkout pages' push channel: every saved session wakes its open pages (services/live.py).
        from django.db.models.signals import post_save

        from .models import CheckoutSession
        from .services.live import on_session_saved

        post_save.connect(on_session_saved, sender=CheckoutSession, dispatch_uid="payments_gateway.live.push")
