"""Ticket links were stored as the ticketing server gave them (GitHub's `html_url`), and pages render
them as links: one that is not an absolute http(s) URL (`javascript:`, `data:`) is emptied, so the
ticket shows its key without a link, as new tickets now do (apps.integrations.ticketing.link_url).

The rule is copied, not imported, so this migration keeps meaning what it meant.
"""

from urllib.parse import urlsplit

from django.db import migrations


def _safe(value: str) -> bool:
    if len(value) > 500 or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return False
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(host)


def drop_unsafe_links(apps, schema_editor):
    TicketLink = apps.get_model("integrations", "TicketLink")
    unsafe = [pk for pk, url in TicketLink.objects.exclude(url="").values_list("pk", "url") if not _safe(url)]
    TicketLink.objects.filter(pk__in=unsafe).update(url="")


class Migration(migrations.Migration):
    dependencies = [("integrations", "0003_inbound")]

    operations = [migrations.RunPython(drop_unsafe_links, migrations.RunPython.noop, elidable=True)]
