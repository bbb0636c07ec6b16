"""`{{ run|verdict }}`: a run's verdict (apps/probes/verdict.py) for the run's page."""

from django import template

from apps.probes.verdict import Verdict, verdict_for

register = template.Library()


@register.filter
def verdict(run) -> Verdict:
    return verdict_for(run)
