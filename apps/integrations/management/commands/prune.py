"""`python manage.py prune`: delete what the READINESS_RETAIN_*_DAYS settings no longer keep (beat runs it daily)."""

from django.core.management.base import BaseCommand

from apps.integrations.retention import prune


class Command(BaseCommand):
    help = (
        "Delete old idempotency records, finished deliveries, inbound callbacks and probe runs' raw records, "
        "as the READINESS_RETAIN_*_DAYS settings say (0 keeps a kind for ever); prints the rows deleted per kind."
    )

    def handle(self, *args, **options):
        for kind, count in prune().items():
            self.stdout.write(f"{kind}: {count}")
