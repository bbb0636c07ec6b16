"""`python manage.py probe URL [options]`: measure an OpenAI-compatible endpoint; exit 1 on a missed SLO."""

import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.probes import cli


class Command(BaseCommand):
    help = "Probe an OpenAI-compatible endpoint under load (see --help); exits 1 when an SLO is missed."

    def add_arguments(self, parser):
        cli.add_arguments(parser)

    def handle(self, *args, **options):
        code = cli.run(options, allow_private_default=settings.READINESS_ALLOW_PRIVATE_ENDPOINTS,
                       out=self.stdout, err=self.stderr)  # fmt: skip
        if code:
            sys.exit(code)
