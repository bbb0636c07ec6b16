"""The one place where tenant scoping happens.

Every tenant-owned model declares `org_lookup`, the path from it to its Organization, and
uses TenantQuerySet. Every view, viewset, export and task gets rows through
`visible_to(access)` (or `in_org(org_id)` in tasks), so an object of another organization
is simply not found: 404, never 403.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from apps.orgs.access import Access


class TenantQuerySet(models.QuerySet):
    def in_org(self, org_id: int) -> TenantQuerySet:
        return self.filter(**{f"{self.model.org_lookup}_id": org_id})

    def visible_to(self, access: Access) -> TenantQuerySet:
        return self.filter(**{f"{self.model.org_lookup}_id__in": access.readable_org_ids})


def org_id_of(obj: models.Model) -> int:
    """The organization id a tenant-owned object belongs to, following its `org_lookup`."""
    *path, last = obj.org_lookup.split("__")
    for name in path:
        obj = getattr(obj, name)
    return getattr(obj, f"{last}_id")
