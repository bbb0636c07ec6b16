"""Every link in a webhook payload is an absolute URL a receiver elsewhere can open."""

import pytest

from apps.checklists import services as checklists
from apps.checklists.models import ChecklistTemplate
from apps.integrations import services
from apps.integrations.models import Delivery
from tests.readiness_helpers import after_run


def links(value, key=""):
    """Every (key, string) in a payload whose key names a link, at any depth."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from links(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from links(v, key)
    elif isinstance(value, str) and (key in ("url", "evidence") or key.endswith("_url")):
        yield key, value


@pytest.fixture
def hooked(world, settings):
    settings.READINESS_BASE_URL = "https://readiness.example.com/"
    services.connector_create(
        access=world.access(world.owner),
        organization=world.org,
        name="everything",
        url="http://127.0.0.1:9/hooks",
        events=services.SUBSCRIBABLE,
    )
    return world


def test_every_link_in_every_emitted_payload_is_an_absolute_url_of_the_site(hooked):
    from apps.probes import services as probes
    from apps.probes.execution import shard_execute
    from apps.reports.evaluation import refresh_project
    from apps.signoffs.services import policy_update, signoff_decide

    world = hooked
    owner = world.access(world.owner)
    refresh_project(world.project)  # the first decision: later changes are events
    checklists.ensure_shipped_templates(world.org)
    template = ChecklistTemplate.objects.get(organization=world.org, key="security")
    checklist = checklists.checklist_add(access=owner, project=world.project, template=template)
    item = checklists.current_responses(checklist).get(item__key="sec.sensitive-data")
    checklists.response_answer(access=owner, response=item, status="fail", evidence_text="PII in logs")
    checklists.response_answer(access=owner, response=item, status="pass", evidence_text="redacted")
    # A run that cannot reach its server fails: probe.failed, with the run's link.
    plan = probes.probe_plan_create(
        access=owner,
        endpoint=world.endpoint,
        name="unreachable",
        max_tokens=8,
        profile={"stages": [{"kind": "poisson", "rate": 5, "duration": 1}]},
    )
    run = probes.probe_run_start(access=owner, plan=plan)
    for shard in run.shards.all():
        shard_execute(shard_id=shard.pk, org_id=world.org.pk)
    after_run(run)  # the decision queue's tasks: the run's announcement
    policy_update(access=owner, org=world.org, gates=[{"function": "engineering", "required": 1}])
    signoff_decide(
        access=world.access(world.member),
        project=world.project,
        function="engineering",
        verdict="reject",
        reason="not yet",
    )
    refresh_project(world.project)

    payloads = list(Delivery.objects.order_by("pk").values_list("event", "payload"))
    events = {event for event, _ in payloads}
    assert {"item.blocker_failed", "item.blocker_passed", "probe.failed", "signoff.rejected"} <= events
    found = [(event, key, url) for event, payload in payloads for key, url in links(payload) if url]
    assert {event for event, _, _ in found} == events  # every payload carries at least its project's link
    for event, key, url in found:
        assert url.startswith("https://readiness.example.com/o/acme/"), (event, key, url)
    blocker = next(p for e, p in payloads if e == "item.blocker_failed")
    assert blocker["data"]["url"].endswith(f"/o/acme/checklists/{checklist.pk}/#item-sec.sensitive-data")
    failed = next(p for e, p in payloads if e == "probe.failed")
    assert "/runs/" in failed["data"]["url"]


def test_links_nested_in_a_payload_are_made_absolute_and_other_text_is_left_alone(hooked):
    body = services.event_payload(
        "decision.changed",
        organization=hooked.org,
        project=hooked.project,
        data={
            "to": "NO-GO",
            "note": "/not/a/link",
            "reasons": [{"evidence": "/o/acme/runs/7/", "message": "x"}],
            "report_url": "/o/acme/reports/3/",
            "url": "https://ci.example/build/9",
        },
    )
    data = body["data"]
    assert data["reasons"][0]["evidence"] == "https://readiness.example.com/o/acme/runs/7/"
    assert data["report_url"] == "https://readiness.example.com/o/acme/reports/3/"
    assert data["url"] == "https://ci.example/build/9"  # already absolute: kept
    assert data["note"] == "/not/a/link"
    assert body["project"]["url"] == "https://readiness.example.com/o/acme/projects/support-copilot/readiness/"
