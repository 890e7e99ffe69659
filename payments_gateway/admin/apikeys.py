from django.contrib import admin, messages
from django.utils import timezone

from ..models import APIKey, IdempotencyKey
from .base import ReadOnlyAdmin


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "created", "last_used", "revoked_at"]
    fields = ["name", "prefix", "created", "last_used", "revoked_at"]
    readonly_fields = ["prefix", "created", "last_used", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw = APIKey.objects.create_key(obj.name)
        obj.pk = key.pk
        obj.prefix, obj.hashed_key, obj.created = key.prefix, key.hashed_key, key.created
        messages.warning(request, f"API key for {key.name}: {raw} — copy it now, it is not shown again.")

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} key(s).")


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ["key", "api_key", "response_status", "created"]
    list_filter = [("created", admin.DateFieldListFilter)]
    search_fields = ["key"]
    list_select_related = ["api_key"]
