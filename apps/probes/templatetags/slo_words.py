"""SLOs in words: `{{ check|slo_check }}` for a run's check, "TTFT p95 10.5 s (target 500 ms)";
`{% slo_target key value %}` for a plan's target, "TTFT p95 ≤ 500 ms"."""

from django import template

from apps.core.templatetags.readable import ms, percent, sig3
from apps.probes.verdict import SLO_NAMES

register = template.Library()


def _figure(key: str, value) -> str:
    if value is None:
        return "not measured"
    if key == "error_rate":
        return percent(value, 2)
    if key == "min_output_tps":
        return f"{sig3(value)} tokens/s"
    return ms(value)


@register.simple_tag
def slo_target(key: str, target) -> str:
    """A plan's SLO target in words: "TTFT p95 ≤ 500 ms", "output speed ≥ 20 tokens/s"."""
    bound = "≥" if key == "min_output_tps" else "≤"
    return f"{SLO_NAMES.get(key, key)} {bound} {_figure(key, target)}"


@register.filter
def slo_check(check: dict) -> str:
    key = check.get("slo", "")
    target = check.get("target")
    limit = "at least " if key == "min_output_tps" else ""
    return f"{SLO_NAMES.get(key, key)} {_figure(key, check.get('actual'))} (target {limit}{_figure(key, target)})"
