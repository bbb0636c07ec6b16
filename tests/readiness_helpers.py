"""Shared test set-ups for the go/no-go decision."""

from apps.checklists import services as checklists
from apps.checklists.policy import organization_policy_update


def one_passing_checklist(*, access, organization, project, category: str = "launch"):
    """The smallest checklist the organization's policy accepts: the policy requires one category,
    and the project's checklist of it has one item, passed. A project with no checklist is NO-GO."""
    items = [{"key": f"{category}.plan", "title": "Launch plan agreed", "severity": "minor", "function": "engineering"}]
    template = checklists.template_save_version(
        access=access,
        organization=organization,
        key=category,
        name=category.capitalize(),
        category=category,
        items=items,
    )
    checklist = checklists.checklist_add(access=access, project=project, template=template)
    organization_policy_update(access=access, organization=organization, required_checklist_categories=[category])
    response = checklists.current_responses(checklist).get()
    checklists.response_answer(access=access, response=response, status="pass", evidence_text="agreed on 1 Dec")
    return checklist


def run_until_evidence(*, access, plan, tries: int = 3):
    """Run `plan` in-process (the worker's job) until a run counts as evidence. On a busy machine
    the load generator can lag behind its schedule (client saturation) and such a run proves
    nothing; the product re-runs it by itself (apps/probes/saturation.py), a test does it here."""
    import pytest

    from apps.probes import services as probes
    from apps.probes.execution import shard_execute
    from apps.probes.verdict import verdict_for

    for _ in range(tries):
        run = probes.probe_run_start(access=access, plan=plan)
        for shard in run.shards.all():
            shard_execute(shard_id=shard.pk, org_id=plan.endpoint.project.organization_id)
        run.refresh_from_db()
        after_run(run)
        if verdict_for(run).evidence:
            return run
    pytest.fail(f"no run of {tries} counted as evidence: {verdict_for(run).label}")


def decided(project):
    """What the decision queue's worker does after a change: the re-evaluation the change queued
    (apps/reports/refresh.py). Inside a test's transaction nothing is queued (on-commit callbacks
    wait for a commit that never comes), so a test that reads the decision runs the task's body."""
    from apps.reports.tasks import project_refresh_task

    project_refresh_task(project.pk)
    return project


def after_run(run):
    """What the decision queue's worker does once a run is finalized: the tasks finalizing queued
    (apps/probes/services.py `_after_run`), each deciding for itself whether it has work. A test
    that executes shards in-process runs them here, as it ran the shards."""
    from apps.probes.tasks import probe_run_announce_task, probe_run_rerun_task
    from apps.reports.tasks import scheduled_report_task

    for task in (probe_run_announce_task, probe_run_rerun_task, scheduled_report_task):
        task(run.pk)
    decided(run.plan.endpoint.project)
    return run


def small_plan(world, simulator, *, duration: float = 2, **fields):
    """A short Poisson plan (5 requests/s for `duration` seconds) on the simulator, for world's endpoint."""
    from apps.probes import services as probes
    from apps.projects import services as projects

    owner = world.access(world.owner)
    endpoint = projects.endpoint_update(access=owner, endpoint=world.endpoint, base_url=simulator.base_url)
    return probes.probe_plan_create(
        access=owner,
        endpoint=endpoint,
        name="load",
        profile={"stages": [{"kind": "poisson", "rate": 5, "duration": duration}]},
        **fields,
    )
