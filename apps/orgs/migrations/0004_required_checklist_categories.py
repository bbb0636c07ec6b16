from django.db import migrations, models

import apps.orgs.models


class Migration(migrations.Migration):
    dependencies = [
        ("orgs", "0003_invitations"),
    ]

    operations = [
        migrations.AddField(
            model_name="organization",
            name="required_checklist_categories",
            field=models.JSONField(
                blank=True,
                default=apps.orgs.models.default_required_categories,
                help_text="Checklist categories every project needs before it can be GO.",
            ),
        ),
    ]
