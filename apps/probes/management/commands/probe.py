"""`python manage.py probe URL [options]`: measure an OpenAI-compatible endpoint; exit 1 on a missed SLO."""

import logging
import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.probes import cli


class Command(BaseCommand):
    help = "Probe an OpenAI-compatible endpoint under load (see --help); exits 1 when an SLO is missed."

    def add_arguments(self, parser):
        cli.add_arguments(parser)

    def handle(self, *args, **options):
        # httpx logs every request at INFO: the /v1/models look-up and each metrics scrape would
        # land between the progress lines and in front of our own error messages.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        code = cli.run(
            options, allow_private_default=settings.READINESS_ALLOW_PRIVATE_ENDPOINTS, out=self.stdout, err=self.stderr
        )
        if code:
            sys.exit(code)
