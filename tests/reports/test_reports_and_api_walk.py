"""The whole flow over the API alone (NO-GO → CONDITIONAL → GO), reports as immutable snapshots,
scheduled reports, notifications and the pages that show the decision."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from apps.orgs import services as org_services
from apps.orgs.access import Access
from apps.orgs.models import Role
from apps.probes import services as probes
from apps.probes.execution import shard_execute
from apps.probes.models import ProbeRun
from apps.reports.models import Report
from tests.conftest import api_client_for, make_user
from tests.readiness_helpers import after_run, decided, one_passing_checklist, run_until_evidence

PROFILE = {"stages": [{"kind": "poisson", "rate": 10, "duration": 3}]}


@pytest.fixture
def people(world):
    """One person per default gate (world.member holds engineering), each with a personal API token
    made once on the "My tokens" page; the project's owner has one too. From here on: Bearer tokens only."""
    from apps.orgs.services import personal_token_create

    users = {"owner": world.owner, "eng": world.member}
    for name, functions in (("sec", ["security"]), ("legal", ["legal"]), ("fin", ["finance"]), ("prod", ["product"])):
        users[name] = make_user(name)
        org_services.membership_add(
            access=world.access(world.owner), org=world.org, username=name, role=Role.MEMBER, functions=functions
        )
    clients = {}
    for name, user in users.items():
        _, plaintext = personal_token_create(access=world.access(user), org=world.org, name="cli", scope="read_write")
        clients[name] = api_client_for(token=plaintext)
    return clients


def run_probe_over_api(client, world, endpoint_id):
    plan = client.post(
        "/api/v1/probe-plans/",
        {"endpoint": endpoint_id, "name": "load", "profile": PROFILE, "max_tokens": 8, "slo": {"ttft_p95_ms": 2000}},
        format="json",
    )
    assert plan.status_code == 201, plan.json()
    for _ in range(3):  # a busy machine can saturate the client: such a run is not evidence, run again
        run = client.post(f"/api/v1/probe-plans/{plan.json()['id']}/start/", format="json").json()
        # The worker's job, done in-process: the shard runs against the simulator over real HTTP.
        for shard in ProbeRun.objects.get(pk=run["id"]).shards.all():
            shard_execute(shard_id=shard.pk, org_id=world.org.pk)
        decided(world.project)  # and the decision queue's: the automatic items read the run
        body = client.get(f"/api/v1/probe-runs/{run['id']}/").json()
        assert body["status"] == "succeeded"
        if body["verdict"]["evidence"]:
            return plan.json()["id"]
    pytest.fail(f"no run counted as evidence: {body['verdict']['label']}")


def readiness(client, world):
    decided(world.project)  # the re-evaluation the last change queued has run
    body = client.get(f"/api/v1/projects/{world.project.pk}/readiness/").json()
    return body["outcome"], body


def test_a_project_goes_from_no_go_to_go_over_the_api_alone(world, tokens, people, simulator):
    """Five people sign the default gates with personal tokens; a pipeline's org token sets the
    external item; nobody opens a page."""
    owner, rw_token = people["owner"], api_client_for(token=tokens["read_write"])
    assert (
        owner.patch(
            f"/api/v1/projects/{world.project.pk}/",
            {"monthly_budget_usd": "5000", "expected_peak_rpm": 120},
            format="json",
        ).status_code
        == 200
    )
    assert (
        owner.patch(
            f"/api/v1/endpoints/{world.endpoint.pk}/", {"base_url": simulator.base_url}, format="json"
        ).status_code
        == 200
    )
    templates = owner.get("/api/v1/checklist-templates/?shipped=true").json()["results"]
    assert sorted(t["key"] for t in templates) == ["cost", "monitoring", "reliability", "security", "tenancy"]
    # The project serves one tenant: the required four, not the shared deployment's checklist.
    templates = [t for t in templates if t["key"] != "tenancy"]
    for t in templates:
        created = owner.post("/api/v1/checklists/", {"project": world.project.pk, "template": t["id"]}, format="json")
        assert created.status_code == 201, created.json()
    outcome, body = readiness(owner, world)
    assert outcome == "NO-GO"
    assert {"blocker_pending", "gate_missing", "probe_missing"} <= {r["code"] for r in body["reasons"]}
    assert all(r["evidence"].startswith("http") for r in body["reasons"] if r["code"] == "blocker_pending")

    run_probe_over_api(owner, world, world.endpoint.pk)
    responses = owner.get(f"/api/v1/checklist-responses/?project={world.project.pk}&page_size=100").json()["results"]
    assert len(responses) == 36
    automatic = {r["item"]["key"]: r for r in responses if r["item"]["evidence_kind"] == "automatic"}
    assert {r["status"] for r in automatic.values()} == {"pass"}, automatic
    waived = "sec.sensitive-data"
    for r in responses:
        kind, key = r["item"]["evidence_kind"], r["item"]["key"]
        if kind == "automatic" or key == waived:
            continue
        client = rw_token if kind == "external" else owner  # a pipeline's token sets external items
        answer = client.post(
            f"/api/v1/checklist-responses/{r['id']}/answer/",
            {"status": "pass", "evidence_text": f"evidence for {key}"},
            format="json",
        )
        assert answer.status_code == 200, answer.json()
    sensitive = next(r for r in responses if r["item"]["key"] == waived)
    waiver = owner.post(
        "/api/v1/waivers/",
        {
            "response": sensitive["id"],
            "reason": "redaction ships next sprint",
            "risk_level": "medium",
            "expires_on": str(timezone.localdate() + timedelta(days=60)),
        },
        format="json",
    )
    assert waiver.status_code == 201, waiver.json()
    assert owner.post(f"/api/v1/waivers/{waiver.json()['id']}/approve/", format="json").status_code == 403
    assert people["sec"].post(f"/api/v1/waivers/{waiver.json()['id']}/approve/", format="json").status_code == 200
    outcome, body = readiness(owner, world)
    assert outcome == "NO-GO" and {r["code"] for r in body["reasons"]} == {"gate_missing", "waived"}

    gates = (("sec", "security"), ("legal", "legal"), ("fin", "finance"), ("eng", "engineering"), ("prod", "product"))
    for who, function in gates:
        signed = people[who].post(
            "/api/v1/signoffs/",
            {"project": world.project.pk, "function": function, "verdict": "approve"},
            format="json",
        )
        assert signed.status_code == 201, signed.json()
    outcome, body = readiness(owner, world)
    assert outcome == "CONDITIONAL" and [r["code"] for r in body["reasons"]] == ["waived"]

    fixed = owner.post(
        f"/api/v1/checklist-responses/{sensitive['id']}/answer/",
        {"status": "pass", "evidence_url": "https://wiki.example/redaction"},
        format="json",
    )
    assert fixed.status_code == 200
    outcome, body = readiness(owner, world)
    assert (outcome, body["reasons"]) == ("GO", [])  # the approvals stand: the evidence got better
    assert {g["status"] for g in body["gates"]} == {"approved"}

    report = owner.post(
        "/api/v1/reports/", {"project": world.project.pk}, format="json", HTTP_IDEMPOTENCY_KEY="report-1"
    )
    again = owner.post(
        "/api/v1/reports/", {"project": world.project.pk}, format="json", HTTP_IDEMPOTENCY_KEY="report-1"
    )
    assert report.status_code == 201 and again.json() == report.json()
    assert Report.objects.filter(project=world.project).count() == 1  # a retried POST made one report
    detail = owner.get(f"/api/v1/reports/{report.json()['id']}/").json()
    assert detail["outcome"] == "GO" and detail["trigger"] == "api"
    snap = detail["snapshot"]
    assert {c["category"]: c["score"]["score"] for c in snap["categories"]} == {
        "cost": 100,
        "monitoring": 100,
        "reliability": 100,
        "security": 100,
    }
    assert snap["probes"][0]["slo_met"] is True and snap["cost"]["projected_monthly_usd"] <= 5000
    cheapest = next(o for o in snap["cost"]["options"] if o["key"] == snap["cost"]["cheapest"])
    assert cheapest["meets_slo"] and round(cheapest["usd_per_month"], 2) == snap["cost"]["projected_monthly_usd"]
    assert "latency" in snap["figures"] and snap["changes"] == {"first": True}


@pytest.fixture
def project_with_run(world, simulator):
    from apps.projects import services as project_services

    owner = world.access(world.owner)
    endpoint = project_services.endpoint_update(access=owner, endpoint=world.endpoint, base_url=simulator.base_url)
    plan = probes.probe_plan_create(
        access=owner, endpoint=endpoint, name="load", profile=PROFILE, max_tokens=8, slo={"ttft_p95_ms": 2000}
    )
    return plan


def _execute(run, world):
    for shard in run.shards.all():
        shard_execute(shard_id=shard.pk, org_id=world.org.pk)
    run.refresh_from_db()
    return after_run(run)


def _article(html: str) -> str:
    return re.search(r'<article class="report">.*</article>', html, re.S).group(0)


def test_a_report_renders_the_same_after_the_project_changes(client, world, project_with_run):
    from apps.checklists import services as checklists
    from apps.checklists.models import ChecklistTemplate
    from apps.projects import services as project_services
    from apps.reports.services import report_create

    owner = world.access(world.owner)
    checklists.ensure_shipped_templates(world.org)
    cost = ChecklistTemplate.objects.get(organization=world.org, key="cost")
    checklist = checklists.checklist_add(access=owner, project=world.project, template=cost)
    _execute(probes.probe_run_start(access=owner, plan=project_with_run), world)
    report = report_create(access=owner, project=world.project)
    client.force_login(world.owner)
    url = f"/o/acme/reports/{report.pk}/"
    before = _article(client.get(url).content.decode())
    assert "NO-GO" in before and "Support Copilot" in before
    # Everything changes: name, answers, a new run, the budget.
    project_services.project_update(access=owner, project=world.project, name="Renamed Bot", monthly_budget_usd=1)
    response = checklists.current_responses(checklist).get(item__key="cost.budget-alerts")
    checklists.response_answer(access=owner, response=response, status="pass", evidence_text="alerts at 50/80/100")
    _execute(probes.probe_run_start(access=owner, plan=project_with_run), world)
    assert _article(client.get(url).content.decode()) == before
    with pytest.raises(TypeError):
        report.save()
    with pytest.raises(TypeError):
        Report.objects.filter(pk=report.pk).update(outcome="GO")
    # The next report says what changed since this one.
    second = report_create(access=owner, project=world.project)
    changes = second.snapshot["changes"]
    assert {"title": response.item.title, "from": "pending", "to": "pass"} in changes["items"]
    assert any(f["what"] == "budget_usd" and f["to"] == 1.0 for f in changes["figures"])
    page = client.get(f"/o/acme/reports/{second.pk}/").content.decode()
    assert f"{response.item.title}</bdi>”: pending → pass" in page  # a user-given title stays isolated
    export = client.get(f"/o/acme/reports/{second.pk}/json/")
    assert export["Content-Disposition"].endswith('.json"')
    assert export.json()["snapshot"]["changes"] == changes and export.json()["outcome"] == second.outcome


def test_a_scheduled_run_publishes_a_report_and_a_manual_run_does_not(world, project_with_run):
    owner = world.access(world.owner)
    _execute(probes.probe_run_start(access=owner, plan=project_with_run), world)
    assert not Report.objects.exists()
    _execute(probes.probe_run_start(access=Access.system(), plan=project_with_run, trigger="schedule"), world)
    report = Report.objects.get()
    assert (report.trigger, report.created_label, report.created_by) == ("schedule", "scheduler", None)


def test_a_decision_change_is_audited_and_mailed(world, project_with_run, django_capture_on_commit_callbacks):
    from apps.core.models import AuditEvent
    from apps.reports.evaluation import refresh_project
    from apps.signoffs.services import policy_update

    owner = world.access(world.owner)
    policy_update(access=owner, org=world.org, gates=[{"function": "engineering", "required": 1}])
    one_passing_checklist(access=owner, organization=world.org, project=world.project)
    assert refresh_project(world.project).outcome == "NO-GO"  # no probe yet, no sign-off
    with django_capture_on_commit_callbacks(execute=True):
        run_until_evidence(access=owner, plan=project_with_run)
        from apps.signoffs.services import signoff_decide

        signoff_decide(
            access=world.access(world.member), project=world.project, function="engineering", verdict="approve"
        )
        decision = refresh_project(world.project)  # the queued re-evaluation; its mail goes on commit
    assert decision.outcome == "GO", decision.reasons
    event = AuditEvent.objects.filter(action="project.decision").latest("pk")
    assert event.changes == {"decision": ["NO-GO", "GO"]}
    sent = [m for m in mail.outbox if "decision changed NO-GO → GO" in m.subject]
    assert len(sent) == 1 and {"owner@x.test", "member@x.test"} <= set(sent[0].to)


def test_pages_show_the_decision_and_refuse_bad_input_clearly(client, world, project_with_run):
    client.force_login(world.owner)
    decided(world.project)
    page = client.get("/o/acme/projects/support-copilot/readiness/").content.decode()
    assert 'data-testid="decision">NO-GO' in page and "no load probe that counts as evidence finished" in page
    assert "the project has no checklist yet" in page
    assert 'data-testid="decision-support-copilot">NO-GO' in client.get("/o/acme/").content.decode()
    reply = client.post(
        "/o/acme/projects/support-copilot/signoffs/", {"function": "security", "verdict": "maybe"}, follow=True
    )
    assert "Unknown verdict" in reply.content.decode()
    reply = client.post("/o/acme/projects/support-copilot/checklists/add/", {"template": "999999"}, follow=True)
    assert "Choose a template" in reply.content.decode()
    reply = client.post("/o/acme/signoff-policy/", {"gates": "[{nope"})
    assert reply.status_code == 400 and "not valid JSON" in reply.content.decode()
    from apps.checklists import services as checklists
    from apps.checklists.models import ChecklistTemplate

    checklists.ensure_shipped_templates(world.org)
    security = ChecklistTemplate.objects.get(organization=world.org, key="security")
    reply = client.post("/o/acme/projects/support-copilot/checklists/add/", {"template": security.pk}, follow=True)
    assert "added" in reply.content.decode()
    checklist = world.project.checklists.get()
    item = checklists.current_responses(checklist).get(item__key="sec.supply-chain")
    reply = client.post(f"/o/acme/responses/{item.pk}/answer/", {"status": "pass"}, follow=True)
    assert "A pass needs evidence" in reply.content.decode()  # refused, with the reason
    reply = client.post(
        f"/o/acme/responses/{item.pk}/answer/", {"status": "pass", "evidence_url": "javascript:x"}, follow=True
    )
    assert "not a valid http(s) URL" in reply.content.decode()
    client.post(f"/o/acme/responses/{item.pk}/answer/", {"status": "fail", "evidence_text": "no SBOM yet"})
    reply = client.post(
        f"/o/acme/responses/{item.pk}/waivers/",
        {"reason": "x", "risk_level": "low", "expires_on": "someday"},
        follow=True,
    )
    assert "Give the expiry as a date" in reply.content.decode()
    page = client.get(f"/o/acme/checklists/{checklist.pk}/").content.decode()
    assert "no SBOM yet" in page and "by owner on" in page
    report = client.post("/o/acme/projects/support-copilot/reports/new/")
    assert report.status_code == 302 and "/reports/" in report["Location"]
    assert "NO-GO" in client.get(report["Location"]).content.decode()


def test_open_findings_list_items_gates_and_their_tickets(world, tokens):
    from apps.checklists import services as checklists
    from apps.checklists.models import ChecklistTemplate
    from apps.integrations import services as integrations
    from apps.integrations.models import TicketLink

    checklists.ensure_shipped_templates(world.org)
    security = ChecklistTemplate.objects.get(organization=world.org, key="security")
    checklist = checklists.checklist_add(access=world.access(world.owner), project=world.project, template=security)
    connector, _ = integrations.connector_create(
        access=world.access(world.owner),
        organization=world.org,
        name="gh",
        kind="github",
        url="https://api.github.com",
        config={"repo": "acme/bot"},
        secret="t",
        events=["item.blocker_failed"],
    )
    key = f"item:{checklist.pk}:sec.sensitive-data"
    TicketLink.objects.create(
        connector=connector,
        project=world.project,
        finding_key=key,
        external_key="42",
        url="https://github.com/acme/bot/issues/42",
    )
    client = api_client_for(token=tokens["read"])
    body = client.get(f"/api/v1/projects/{world.project.pk}/findings/").json()
    by_key = {f["key"]: f for f in body["results"]}
    assert body["count"] == len(body["results"]) == 11 + 5  # every security item pending + five default gates
    assert by_key[key]["tickets"] == [
        {"connector": "gh", "key": "42", "url": "https://github.com/acme/bot/issues/42", "state": "open"}
    ]
    assert by_key[key]["evidence"].startswith("http://testserver/o/acme/checklists/")
    gates = client.get(f"/api/v1/projects/{world.project.pk}/findings/?kind=gate").json()
    functions = ("security", "legal", "finance", "engineering", "product")
    assert {f["key"] for f in gates["results"]} == {f"project:{world.project.pk}:gate:{g}" for g in functions}
