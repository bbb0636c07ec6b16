import django.db.models.deletion
from django.db import migrations, models

import apps.core.crypto
from apps.integrations.models import new_inbound_id


def give_each_connector_an_inbound_id(registry, schema_editor):
    Connector = registry.get_model("integrations", "Connector")
    for connector in Connector.objects.filter(inbound_id__isnull=True):
        connector.inbound_id = new_inbound_id()
        connector.save(update_fields=["inbound_id"])


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0002_tickets"),
    ]

    operations = [
        migrations.AddField(
            model_name="connector",
            name="inbound_secret",
            field=apps.core.crypto.EncryptedTextField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="connector",
            name="inbound_id",
            field=models.CharField(max_length=40, null=True),
        ),
        migrations.RunPython(give_each_connector_an_inbound_id, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="connector",
            name="inbound_id",
            field=models.CharField(default=new_inbound_id, max_length=40, unique=True),
        ),
        migrations.CreateModel(
            name="InboundEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("delivery_id", models.CharField(blank=True, max_length=100)),
                ("received_at", models.DateTimeField(auto_now_add=True)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("applied", "Applied"),
                            ("ignored", "Ignored (nothing linked)"),
                            ("rejected", "Rejected"),
                        ],
                        max_length=10,
                    ),
                ),
                ("detail", models.CharField(blank=True, max_length=500)),
                (
                    "connector",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="inbound_events",
                        to="integrations.connector",
                    ),
                ),
                (
                    "ticket",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="integrations.ticketlink",
                    ),
                ),
            ],
            options={
                "ordering": ["-received_at", "-pk"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("delivery_id", ""), _negated=True)
                        & models.Q(("status", "rejected"), _negated=True),
                        fields=("connector", "delivery_id"),
                        name="inbound_delivery_once",
                    )
                ],
            },
        ),
    ]
