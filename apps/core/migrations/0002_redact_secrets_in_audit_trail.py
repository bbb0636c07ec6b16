"""Connector secrets created before the audit trail told secrets by their field were recorded in
clear (`secret: ∅ → whsec_…`), readable by every member. This rewrites those values as "(set)".

The trail is append-only for the application; a leaked secret is the one thing worth rewriting it
for. The rules are copied, not imported, so this migration keeps meaning what it meant.
"""

from django.db import migrations
from django.db.models import Q

# The names services record secrets under (apps.core.services.is_secret_name at the time).
SECRET_NAMES = ("secret", "inbound_secret", "api_key")
MARKERS = {"(set)", "(empty)", "(changed)", "(replaced)", "(removed)", "(dropped: origin changed)"}


def _marker(value):
    if value is None or (isinstance(value, str) and value in MARKERS):
        return value
    return "(set)" if value else "(empty)"


def redact(apps, schema_editor):
    # The historical model has a plain manager: the append-only guard of AuditEventQuerySet is not here.
    AuditEvent = apps.get_model("core", "AuditEvent")
    holding = Q()
    for name in SECRET_NAMES:
        holding |= Q(changes__has_key=name)
    for event in AuditEvent.objects.filter(holding).only("pk", "changes").iterator(chunk_size=500):
        changes = dict(event.changes)
        for name in SECRET_NAMES:
            if isinstance(changes.get(name), list):
                changes[name] = [_marker(v) for v in changes[name]]
        if changes != event.changes:
            AuditEvent.objects.filter(pk=event.pk).update(changes=changes)


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]

    operations = [migrations.RunPython(redact, migrations.RunPython.noop, elidable=True)]
