"""`python manage.py simulate --port 8800 --scenario autoscaling --cold-start-s 10`."""

from django.core.management.base import BaseCommand

from apps.simulator.__main__ import add_arguments, config_from, serve
from apps.simulator.scenarios import SCENARIOS


class Command(BaseCommand):
    help = f"Run the OpenAI-compatible inference-server simulator (scenarios: {', '.join(SCENARIOS)})."

    def add_arguments(self, parser):
        add_arguments(parser)

    def handle(self, *args, **options):
        serve(options["host"], options["port"], config_from(options), announce=self.stdout.write)
