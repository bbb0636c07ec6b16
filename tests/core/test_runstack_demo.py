"""`make run` starts the demo's probe runs one after the other, never together."""

from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from apps.demo.management.commands.runstack import Command
from apps.probes.models import ProbeRun


def test_the_demo_plans_start_one_after_the_other_and_only_once(db):
    call_command("seed_demo")
    command = Command()
    waiting = command._demo_plans()
    assert [p.name for p in waiting] == ["baseline", "autoscaling"]

    waiting = command._demo_next(waiting)
    [baseline] = ProbeRun.objects.all()
    assert baseline.plan.name == "baseline" and [p.name for p in waiting] == ["autoscaling"]
    assert command._demo_next(waiting) == waiting  # the baseline is still queued: nothing else starts

    # Just finished: its automatic re-run, if any, goes first; a few seconds later the next starts.
    ProbeRun.objects.filter(pk=baseline.pk).update(status="succeeded", finished_at=timezone.now())
    assert command._demo_next(waiting) == waiting
    ProbeRun.objects.filter(pk=baseline.pk).update(finished_at=timezone.now() - timedelta(seconds=10))
    assert command._demo_next(waiting) == []
    assert sorted(ProbeRun.objects.values_list("plan__name", flat=True)) == ["autoscaling", "baseline"]

    assert command._demo_plans() == []  # a later `make run` leaves the demo plans be
