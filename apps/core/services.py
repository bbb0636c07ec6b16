from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models

from apps.core.crypto import EncryptedSecret
from apps.core.models import AuditEvent

if TYPE_CHECKING:
    from apps.orgs.access import Access


def snapshot(instance: models.Model, fields: list[str]) -> dict:
    """A JSON-safe view of `fields` for the audit trail; secrets become "(set)" / "(empty)"."""
    out = {}
    for name in fields:
        value = getattr(instance, name)
        if isinstance(value, EncryptedSecret) or name.endswith("api_key"):
            value = "(set)" if value else "(empty)"
        elif isinstance(value, models.Model):
            value = str(value)
        elif value is not None and not isinstance(value, str | int | float | bool | list | dict):
            value = str(value)
        out[name] = value
    return out


def diff(before: dict, after: dict) -> dict:
    return {k: [before.get(k), after.get(k)] for k in after.keys() | before.keys() if before.get(k) != after.get(k)}


def audit_record(
    *,
    access: Access | None,
    organization_id: int,
    action: str,
    obj: models.Model,
    changes: dict | None = None,
) -> AuditEvent:
    """Append one audit event; call it inside the service's transaction."""
    return AuditEvent.objects.create(
        organization_id=organization_id,
        actor=access.user if access else None,
        actor_label=access.label if access else "system",
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        changes=changes or {},
    )
