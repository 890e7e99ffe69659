"""Schedule the periodic webhook delivery task (django-q2), so `qcluster` retries due deliveries every minute.

Deliveries are also kicked right after their event commits; this schedule is what sends retries and anything a
lost kick missed.
"""

from django.db import migrations

NAME = "payments_gateway.deliver_webhooks"


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.get_or_create(
        name=NAME,
        defaults={
            "func": "payments_gateway.tasks.deliver_webhooks",
            "schedule_type": "I",  # Schedule.MINUTES
            "minutes": 1,
            "repeats": -1,
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("payments_gateway", "0003_outgoing_delivery_claims"),
        ("django_q", "0014_schedule_cluster"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
