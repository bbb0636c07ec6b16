"""readiness acting by itself says so: `Access.system()`, never `None`.

`None` once meant "the system" and let a forgotten argument write anywhere. Now every service
refuses it, and the system's own access writes, audits as "system" and lists nothing.
"""

import pytest

from apps.core.models import AuditEvent
from apps.core.services import audit_record, require_writer
from apps.orgs.access import Access
from apps.probes import services as probes
from apps.projects.models import Project
from apps.reports.services import report_create


def test_services_refuse_none_instead_of_granting_a_write(world):
    with pytest.raises(TypeError, match="Access.system"):
        require_writer(None, world.org.pk)
    with pytest.raises(TypeError, match="Access.system"):
        audit_record(access=None, organization_id=world.org.pk, action="x", obj=world.project)
    plan = probes.probe_plan_create(
        access=world.access(world.owner),
        endpoint=world.endpoint,
        name="p",
        profile={"stages": [{"kind": "poisson", "rate": 1, "duration": 5}]},
    )
    with pytest.raises(TypeError):
        probes.probe_run_start(access=None, plan=plan)
    assert not plan.runs.exists()
    with pytest.raises(TypeError):
        report_create(access=None, project=world.project)
    assert not world.project.reports.exists()


def test_system_access_writes_anywhere_and_is_named_in_the_audit_log(world):
    system = Access.system()
    require_writer(system, world.org.pk)
    require_writer(system, world.other_org.pk)
    event = audit_record(access=system, organization_id=world.org.pk, action="x", obj=world.project)
    assert (event.actor_id, event.actor_label) == (None, "system")
    report = report_create(access=system, project=world.project, trigger="schedule")
    assert (report.created_by_id, report.created_label) == (None, "scheduler")
    assert AuditEvent.objects.filter(organization=world.org, actor_label="system").exists()


def test_system_access_is_no_person_and_lists_nothing(world):
    system = Access.system()
    assert system.user is None and system.token is None
    assert Project.objects.visible_to(system).count() == 0  # selectors are for people; workers load by id
