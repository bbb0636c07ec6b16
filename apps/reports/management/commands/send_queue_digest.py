from django.conf import settings
from django.core.management.base import BaseCommand

from apps.reports.queue import queue_digest_send


class Command(BaseCommand):
    help = 'Mail each person their "waiting for you" list (only with READINESS_QUEUE_DIGEST=true). Run it daily.'

    def handle(self, *args, **options):
        if not settings.READINESS_QUEUE_DIGEST:
            self.stdout.write("The digest is off (READINESS_QUEUE_DIGEST=false): nothing sent.")
            return
        self.stdout.write(f"Digests sent: {queue_digest_send()}")
