"""The go/no-go rules in words: stated once in apps/reports/decision.py, printed by every report."""

from django.urls import reverse
from django.utils.html import escape

from apps.reports.decision import CONDITIONAL_WHEN, NO_GO_WHEN, RULES


def test_the_rules_list_every_no_go_rule_then_every_conditional_one_then_go():
    lines = RULES.splitlines()
    assert lines[0] == "NO-GO when any of"
    starts = [RULES.index("  - " + rule.split("\n")[0]) for rule in NO_GO_WHEN + CONDITIONAL_WHEN]
    assert starts == sorted(starts)
    assert starts[len(NO_GO_WHEN) - 1] < RULES.index("CONDITIONAL when") < starts[len(NO_GO_WHEN)]
    assert RULES.index("GO otherwise.") > starts[-1]
    assert lines[-1] == "Cancelled, failed and client-saturated runs never count as evidence, fresh or not."


def test_a_report_prints_the_rules_it_was_decided_by(client, w):
    assert w.report.snapshot["rules"] == RULES
    client.force_login(w.owner)
    page = client.get(reverse("report-detail", kwargs={"org_slug": w.org.slug, "pk": w.report.pk})).content.decode()
    assert f'<pre class="rules">{escape(RULES)}</pre>' in page
