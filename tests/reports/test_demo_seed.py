"""`make run`'s demo data: idempotent, and the demo project is a real NO-GO a new user can work on."""

from django.core.management import call_command

from apps.integrations.models import Connector
from apps.reports.models import ProjectStatus


def test_the_demo_project_is_no_go_for_stated_reasons_and_seeding_twice_changes_nothing(db):
    call_command("seed_demo")
    call_command("seed_demo")
    status = ProjectStatus.objects.get(project__slug="support-copilot")
    assert status.outcome == "NO-GO"
    messages = [r["message"] for r in status.reasons]
    assert any("Sensitive data" in m and "failed" in m for m in messages)
    assert any("Prompt injection" in m and "pending" in m for m in messages)
    assert sum("sign-off missing" in m for m in messages) == 3  # security, engineering, finance
    assert any("no load probe" in m for m in messages)  # until make run's first run finishes
    assert status.project.checklists.count() == 4
    assert Connector.objects.filter(organization__slug="acme").count() == 1
    [log] = status.project.usage_logs.all()
    assert log.status == "done" and log.analysis["burstiness"]["busiest_user"] == "batch-script"
    assert status.project.traffic.requests_per_day == 150_000
    from django.conf import settings

    from apps.costs import stored

    names = [f["name"] for f in stored.listing(settings.READINESS_USAGE_LOG_IMPORT_DIR, "acme")]
    assert "pilot/usage-2026-11.csv" in names  # to try "analyse one already stored on the server"
