from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from ..models import APIKey, IdempotencyKey
from ..models.apikeys import SCOPES
from .base import ReadOnlyAdmin
from .secrets import secret_page


class APIKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in SCOPES],
        initial=list(SCOPES),
        widget=forms.CheckboxSelectMultiple,
        help_text="GET requests need 'read'; each kind of change its own write scope. Only 'read': a read-only key.",
    )

    class Meta:
        model = APIKey
        fields = ["name", "scopes"]

    def clean_scopes(self):
        return [scope for scope in SCOPES if scope in self.cleaned_data["scopes"]]


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    """API keys: a new key is shown once, on the page answering its creation (see ``admin/secrets.py``); its
    scopes can be changed later."""

    form = APIKeyForm
    list_display = ["name", "prefix", "scope_list", "created", "last_used", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    fields = ["name", "scopes", "prefix", "created", "last_used", "revoked_at"]
    readonly_fields = ["prefix", "created", "last_used", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description="scopes")
    def scope_list(self, obj: APIKey) -> str:
        return ", ".join(obj.scopes)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw = APIKey.objects.create_key(obj.name, obj.scopes)
        obj.pk = key.pk
        obj.prefix, obj.hashed_key, obj.created = key.prefix, key.hashed_key, key.created
        obj.raw_key_shown_once = raw  # for response_add, on this request only: only the hash is stored

    def response_add(self, request, obj, post_url_continue=None):
        return secret_page(
            request,
            self.admin_site,
            title="API key created",
            intro=f"The API key {obj.name!r} was created. Send it as 'Authorization: Bearer <key>'.",
            secrets=[(obj.name, obj.raw_key_shown_once)],
            back_url=reverse("admin:payments_gateway_apikey_changelist"),
            back_label="API keys",
        )

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
