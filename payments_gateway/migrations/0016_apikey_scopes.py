"""API keys get scopes. Keys made before scopes existed keep doing everything they could: every scope."""

from django.db import migrations, models

import payments_gateway.models.apikeys

# Frozen here: a scope added later is not given to old keys by this migration.
SCOPES_AT_0016 = ["read", "sessions:write", "refunds:write", "subscriptions:write", "webhooks:write", "transfers:write"]


def give_existing_keys_every_scope(apps, schema_editor):
    apps.get_model("payments_gateway", "APIKey").objects.update(scopes=SCOPES_AT_0016)


class Migration(migrations.Migration):
    dependencies = [("payments_gateway", "0015_subscriptions")]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="scopes",
            field=models.JSONField(default=list, help_text="What the key may do: read, sessions:write, ..."),
        ),
        migrations.RunPython(give_existing_keys_every_scope, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="apikey",
            name="scopes",
            field=models.JSONField(
                default=payments_gateway.models.apikeys.all_scopes,
                help_text="What the key may do: read, sessions:write, ...",
            ),
        ),
        migrations.AlterField(
            model_name="apikey",
            name="last_used",
            field=models.DateTimeField(
                blank=True, help_text="Written at most once a minute (see api/auth.py).", null=True
            ),
        ),
    ]
