from django.contrib import admin
from django.urls import path


class ReadOnlyAdmin(admin.ModelAdmin):
    """For logs: they record what happened and are never edited by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """A log shown under its parent: rows link to their own page and are never added or edited here."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def action_urls(model_admin: admin.ModelAdmin, prefix: str, *actions: str) -> list:
    """The URLs ``<object_id>/<action>/`` of an admin's ``<action>_view`` methods, named
    ``payments_gateway_<prefix>_<action>``; list them before the default URLs (whose ``<object_id>/`` takes all)."""
    view = model_admin.admin_site.admin_view
    return [
        path(
            f"<path:object_id>/{action}/",
            view(getattr(model_admin, f"{action}_view")),
            name=f"payments_gateway_{prefix}_{action}",
        )
        for action in actions
    ]
