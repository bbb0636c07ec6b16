from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import IntegrityError, models, transaction

from apps.core.crypto import EncryptedSecret
from apps.core.errors import ApplicationError
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


def require_writer(access: Access | None, org_id: int) -> None:
    """404 outside the principal's organizations, 403 for a read-only role there.

    `access=None` is the system itself (the scheduler), which may write.
    """
    if access is None:
        return
    if not access.can_read(org_id):
        raise ApplicationError("Not found.", code="not_found", status=404)
    if not access.can_write(org_id):
        raise ApplicationError("Your role in this organization is read-only.", code="forbidden", status=403)


def save_unique(instance: models.Model, *, field: str, message: str, hint: str = "Already used.") -> None:
    """Save, turning a unique-constraint violation into one clear error on `field`."""
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError:
        raise ApplicationError(message, code="duplicate", detail={field: [hint]}) from None
