from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """For logs: they record what happened and are never edited by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
