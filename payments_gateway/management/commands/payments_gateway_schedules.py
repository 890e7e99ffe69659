"""``manage.py payments_gateway_schedules``: create or update the django-q2 schedules (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ...schedules import SCHEDULES, ensure_schedules


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules of the gateway's periodic tasks (safe to run again)."

    def handle(self, *args: Any, **options: Any) -> None:
        created = ensure_schedules()
        for name in SCHEDULES:
            self.stdout.write(f"{name}: {'created' if name in created else 'up to date'}")
