"""`python manage.py simulate --port 8800 --scenario autoscaling --cold-start-s 10`."""

from django.core.management.base import BaseCommand

from apps.simulator.__main__ import add_arguments, config_from, serve


class Command(BaseCommand):
    help = "Run the OpenAI-compatible inference-server simulator (scenarios: steady, autoscaling, flaky, instant)."

    def add_arguments(self, parser):
        add_arguments(parser)

    def handle(self, *args, **options):
        serve(options["host"], options["port"], config_from(options), announce=self.stdout.write)
