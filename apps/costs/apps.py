from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save


def _seed_new_org(sender, instance, created, **kwargs):
    if created:
        from apps.costs.services import ensure_catalog

        ensure_catalog(instance)


def _seed_every_org(sender, **kwargs):
    from apps.costs.services import ensure_catalog
    from apps.orgs.models import Organization

    for org in Organization.objects.iterator():
        ensure_catalog(org)


class CostsConfig(AppConfig):
    name = "apps.costs"
    label = "costs"

    def ready(self):
        # The price catalog is seeded when an organization is created (and, for organizations
        # that predate it, at migrate), never by a page or an API read.
        post_save.connect(_seed_new_org, sender="orgs.Organization", dispatch_uid="costs-seed-new-org")
        post_migrate.connect(_seed_every_org, sender=self, dispatch_uid="costs-seed-every-org")
