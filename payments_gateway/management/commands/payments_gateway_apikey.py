"""``manage.py payments_gateway_apikey create <name> [--scope S ...] | list | revoke <prefix or id>``.

``create`` prints the raw key once: only its SHA-256 is stored, so it cannot be shown again. Without ``--scope``
the key has every scope; ``--scope read`` makes a read-only key.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ...models import APIKey
from ...models.apikeys import SCOPES


class Command(BaseCommand):
    help = "Create, list or revoke REST API keys."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="create|list|revoke")
        create = sub.add_parser("create", help="Create a key and print it once.")
        create.add_argument("name", help="What the key is for, e.g. 'shop backend'.")
        create.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            metavar="SCOPE",
            help=f"What the key may do, repeatable: {', '.join(SCOPES)} (default: all; 'read' only: read-only).",
        )
        sub.add_parser("list", help="List keys (prefix, name, scopes, created, last used, revoked).")
        revoke = sub.add_parser("revoke", help="Revoke a key by its prefix (pgk_...) or id.")
        revoke.add_argument("key", help="The key's prefix as shown by 'list', or its id.")

    def handle(self, *args, action, **options):
        return getattr(self, f"_{action}")(**options) or ""

    def _create(self, name, scopes=None, **options):
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("Give the key a name of 1 to 100 characters.")
        try:
            key, raw = APIKey.objects.create_key(name, scopes)
        except ValueError as exc:
            raise CommandError(str(exc))
        self.stdout.write(raw)
        self.stderr.write(
            f"Created API key {key.pk} ({name}) with scopes {', '.join(key.scopes)}. "
            "Copy it now: it is not shown again."
        )

    def _list(self, **options):
        keys = APIKey.objects.order_by("created")
        if not keys:
            self.stdout.write("No API keys. Create one with: manage.py payments_gateway_apikey create <name>")
        for key in keys:
            state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            used = f"{key.last_used:%Y-%m-%d %H:%M}" if key.last_used else "never"
            self.stdout.write(
                f"{key.pk:>4}  {key.prefix}…  {key.name:<30}  scopes {','.join(key.scopes)}  "
                f"created {key.created:%Y-%m-%d %H:%M}  last used {used}  {state}"
            )

    def _revoke(self, key, **options):
        matches = APIKey.objects.filter(prefix=key) if not key.isdigit() else APIKey.objects.filter(pk=int(key))
        if not key.isdigit() and not matches and len(key) > 12:
            matches = APIKey.objects.filter(prefix=key[:12])  # the whole raw key was pasted
        count = matches.count()
        if count == 0:
            raise CommandError(f"No API key with prefix or id {key!r}; see 'payments_gateway_apikey list'.")
        if count > 1:
            raise CommandError(f"{count} keys match {key!r}; revoke by id instead (see 'list').")
        found = matches.get()
        if found.revoked_at:
            self.stdout.write(f"API key {found.pk} ({found.name}) was already revoked.")
            return
        APIKey.objects.filter(pk=found.pk).update(revoked_at=timezone.now())
        self.stdout.write(f"Revoked API key {found.pk} ({found.name}).")
