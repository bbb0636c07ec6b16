from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import FieldDoesNotExist
from django.db import IntegrityError, models, transaction

from apps.core.crypto import EncryptedTextField
from apps.core.errors import ApplicationError
from apps.core.models import AuditEvent

if TYPE_CHECKING:
    from apps.orgs.access import Access


# What the audit trail says about a secret: whether one is there and what happened to it, never
# its value (the audit page is readable by every member, viewers included).
SECRET_SET = "(set)"
SECRET_EMPTY = "(empty)"
SECRET_CHANGED = "(changed)"
SECRET_REMOVED = "(removed)"
SECRET_DROPPED = "(dropped: origin changed)"
SECRET_REGENERATED = "(dropped: origin changed; a new one generated)"
SECRET_MARKERS = frozenset(
    {SECRET_SET, SECRET_EMPTY, SECRET_CHANGED, SECRET_REMOVED, SECRET_DROPPED, SECRET_REGENERATED}
)
# Words that make an audited name a secret's: `secret`, `inbound_secret`, `api_key`, `password`,
# `token`. Not `tokens` (max_tokens is a number) and not any `*_key` (finding_key is an identifier).
_SECRET_WORDS = {"secret", "password", "passwd", "token"}


def is_secret_name(name: str) -> bool:
    words = set(name.lower().split("_"))
    return bool(words & _SECRET_WORDS) or name.lower().endswith("api_key")


def _is_secret_field(instance: models.Model, name: str) -> bool:
    try:
        field = instance._meta.get_field(name)
    except FieldDoesNotExist:
        field = None
    return isinstance(field, EncryptedTextField) or is_secret_name(name)


def snapshot(instance: models.Model, fields: list[str]) -> dict:
    """A JSON-safe view of `fields` for the audit trail; secrets become "(set)" / "(empty)".

    A secret is told by its field (EncryptedTextField) or its name, not by the value: a secret
    assigned in this request is still a plain str until the row is read back.
    """
    out = {}
    for name in fields:
        value = getattr(instance, name)
        if _is_secret_field(instance, name):
            value = SECRET_SET if value else SECRET_EMPTY
        elif isinstance(value, models.Model):
            value = str(value)
        elif value is not None and not isinstance(value, str | int | float | bool | list | dict):
            value = str(value)
        out[name] = value
    return out


def diff(before: dict, after: dict) -> dict:
    return {k: [before.get(k), after.get(k)] for k in after.keys() | before.keys() if before.get(k) != after.get(k)}


def _marker(value):
    if value is None or (isinstance(value, str) and value in SECRET_MARKERS):
        return value
    return SECRET_SET if value else SECRET_EMPTY


def _redacted(changes: dict) -> dict:
    """The last guard: a secret's value written straight into `changes` (not through snapshot)
    is stored as "(set)". Only the markers, or nothing, pass."""
    out = {}
    for name, pair in changes.items():
        if is_secret_name(name):
            pair = [_marker(v) for v in pair] if isinstance(pair, list | tuple) else _marker(pair)
        out[name] = pair
    return out


def audit_record(
    *,
    access: Access,
    organization_id: int,
    action: str,
    obj: models.Model,
    changes: dict | None = None,
) -> AuditEvent:
    """Append one audit event; call it inside the service's transaction."""
    _require_access(access)
    return AuditEvent.objects.create(
        organization_id=organization_id,
        actor=access.user,
        actor_label=access.label,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        changes=_redacted(changes or {}),
    )


def _require_access(access) -> None:
    # `None` once meant "the system"; a forgotten argument then granted writes. Now it is an error.
    if access is None or not hasattr(access, "can_write"):
        raise TypeError("pass the caller's Access, or Access.system() for readiness itself")


def require_writer(access: Access, org_id: int) -> None:
    """404 outside the principal's organizations, 403 for a read-only role there.
    `Access.system()` (the scheduler, the workers) may write anywhere."""
    _require_access(access)
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
