from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save


def _ship_to_new_org(sender, instance, created, **kwargs):
    if created:
        from apps.checklists.services import ensure_shipped_templates

        ensure_shipped_templates(instance)


def _ship_to_every_org(sender, **kwargs):
    """A release with new shipped template versions reaches every organization at `migrate`."""
    from apps.checklists.services import ensure_shipped_templates
    from apps.orgs.models import Organization

    for org in Organization.objects.iterator():
        ensure_shipped_templates(org)


class ChecklistsConfig(AppConfig):
    name = "apps.checklists"
    label = "checklists"

    def ready(self):
        # The shipped templates are written when an organization is created and at each migrate,
        # never by a page or an API read.
        post_save.connect(_ship_to_new_org, sender="orgs.Organization", dispatch_uid="checklists-ship-new-org")
        post_migrate.connect(_ship_to_every_org, sender=self, dispatch_uid="checklists-ship-every-org")
