"""Headless Chromium (Debian's package) through Playwright: what a new user does first."""

import os

import pytest

from apps.checklists.policy import organization_policy_update
from apps.orgs import services as org_services
from tests.browser import log_in, screenshot_dir, settled
from tests.conftest import make_user
from tests.readiness_helpers import one_passing_checklist, run_until_evidence

pytestmark = pytest.mark.browser


def test_new_user_logs_in_creates_a_project_and_an_endpoint_and_tests_it(
    page, live_server, simulator, transactional_db
):
    user = make_user("dana")
    org_services.organization_create(name="Initech", slug="initech", owner=user)

    page.goto(live_server.url + "/")
    assert "/login/" in page.url
    page.fill("#id_username", "dana")
    page.fill("#id_password", "pw-dana")
    page.click("button[type=submit]")
    page.wait_for_url("**/o/initech/")

    page.click("text=New project")
    page.fill("#id_name", "Claims Assistant")
    page.select_option("#id_stage", "pilot")
    page.fill("#id_monthly_budget_usd", "2500")
    page.click("button:has-text('Create project')")
    page.wait_for_url("**/o/initech/projects/claims-assistant/")
    assert page.is_visible("text=Claims Assistant")

    page.click("text=Add endpoint")
    page.fill("#id_name", "vllm-l4")
    page.fill("#id_base_url", "not a url")
    page.fill("#id_model_name", "sim-llama-3-8b")
    page.fill("#id_gpu_type", "NVIDIA L4")
    page.fill("#id_gpus_per_replica", "1")
    page.fill("#id_gpu_hourly_usd", "0.8")
    page.fill("#id_api_key", "sk-browser-secret")
    page.click("button:has-text('Add endpoint')")
    # A bad URL is refused on the form, with the other fields kept.
    assert page.is_visible("text=URL must start with http:// or https://")
    assert page.input_value("#id_model_name") == "sim-llama-3-8b"
    page.fill("#id_base_url", simulator.base_url)
    page.fill("#id_api_key", "sk-browser-secret")
    page.click("button:has-text('Add endpoint')")
    page.wait_for_url("**/o/initech/projects/claims-assistant/")
    rows = page.inner_text("[data-testid=endpoint-list]")
    assert "vllm-l4" in rows and simulator.base_url in rows
    assert "sk-browser-secret" not in page.content()

    page.click("button:has-text('Test connection')")
    page.wait_for_selector(".msg.success")
    assert "'sim-llama-3-8b' is served" in page.inner_text(".messages")

    page.goto(live_server.url + "/o/initech/")
    assert "Claims Assistant" in page.inner_text("[data-testid=project-list]")
    page.screenshot(path=str(screenshot_dir() / "dashboard.png"), full_page=True)


def test_a_user_starts_a_probe_watches_it_progress_and_reads_the_charts(
    page, live_server, simulator, probe_worker, transactional_db
):
    from apps.orgs.access import Access
    from apps.probes import services as probes
    from apps.projects import services as projects

    user = make_user("erin")
    org = org_services.organization_create(name="Hooli", slug="hooli", owner=user)
    access = Access.for_user(user)
    project = projects.project_create(access=access, organization=org, name="Search Assistant")
    endpoint = projects.endpoint_create(
        access=access,
        project=project,
        name="sim",
        base_url=simulator.base_url,
        model_name="sim-llama-3-8b",
        metrics_url=simulator.base_url.removesuffix("/v1") + "/metrics",
        price_model="hosted_api",
        input_usd_per_mtok=1,
        output_usd_per_mtok=2,
    )
    plan = probes.probe_plan_create(
        access=access,
        endpoint=endpoint,
        name="nightly",
        max_tokens=16,
        profile={"stages": [{"kind": "poisson", "rate": 10, "duration": 8}]},
        slo={"ttft_p95_ms": 1000},
    )

    page.goto(live_server.url + "/login/")
    page.fill("#id_username", "erin")
    page.fill("#id_password", "pw-erin")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/o/hooli/plans/{plan.pk}/")
    page.click("[data-testid=start-run]")
    page.wait_for_url("**/o/hooli/runs/*/")

    def sent() -> int:
        text = page.inner_text("[data-field=sent]").replace(",", "")  # "1,234": counts have separators
        return int(text) if text.isdigit() else 0

    # Predicates as functions, not expressions: Playwright evaluates an expression string with
    # eval() inside the page, which the Content-Security-Policy refuses.
    sent_in_page = "Number(document.querySelector('[data-field=sent]').textContent.replace(/,/g, ''))"
    page.wait_for_function(f"() => {sent_in_page} > 0", timeout=60_000)
    first = sent()
    page.wait_for_function(f"() => {sent_in_page} > {first}", timeout=30_000)  # the page updates without a reload
    width = page.eval_on_selector("[data-field=bar]", "el => parseFloat(el.style.width)")
    assert width > 0
    # When the run ends the page reloads itself with the results.
    page.wait_for_selector("[data-testid=stage-table]", timeout=90_000)
    page.wait_for_function("() => document.querySelector('#fig-latency')?.data")
    traces = page.evaluate("document.querySelector('#fig-latency').data.length")
    assert traces >= 3
    assert page.evaluate("document.querySelector('#fig-server').data.length") >= 1
    # On a busy machine the load generator can lag: then the run says it is not evidence, never "met".
    verdict = page.inner_text("[data-testid=run-verdict]")
    assert verdict in ("all SLOs met", "client saturated: latencies are not evidence")
    page.screenshot(path=str(screenshot_dir() / "run.png"), full_page=True)


def _decision(page) -> str:
    settled(page)
    return page.inner_text("[data-testid=decision]").strip()


def test_a_project_is_worked_from_no_go_to_go_in_the_browser(page, live_server, simulator, decision_worker):
    """Answer items, waive one, three people sign: the decision moves NO-GO → CONDITIONAL → GO."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.checklists import services as checklists
    from apps.orgs.access import Access
    from apps.orgs.models import Role
    from apps.probes import services as probes
    from apps.projects import services as projects
    from apps.signoffs.services import policy_update

    olga = make_user("olga")
    org = org_services.organization_create(name="Vandelay", slug="vandelay", owner=olga)
    owner = Access.for_user(olga)
    for name, function in (("sam", "security"), ("erin", "engineering"), ("fran", "finance")):
        make_user(name)
        org_services.membership_add(access=owner, org=org, username=name, role=Role.MEMBER, functions=[function])
    policy_update(
        access=owner, org=org, gates=[{"function": f, "required": 1} for f in ("security", "engineering", "finance")]
    )
    checklists.template_save_version(
        access=owner,
        organization=org,
        key="launch",
        name="Launch basics",
        category="security",
        items=[
            {"key": "x.pii", "title": "PII is redacted from logs", "severity": "blocker", "function": "security"},
            {"key": "x.alerts", "title": "Latency alerts page on-call", "severity": "major", "function": "engineering"},
            {
                "key": "x.load",
                "title": "p95 TTFT under 5 s",
                "severity": "blocker",
                "function": "engineering",
                "evidence_kind": "automatic",
                "rule": {"metric": "ttft_p95_ms", "op": "<=", "value": 5000},
            },
        ],
    )
    # The organization's readiness policy requires the one category this org uses.
    organization_policy_update(access=owner, organization=org, required_checklist_categories=["security"])
    project = projects.project_create(access=owner, organization=org, name="Import Export Bot")
    endpoint = projects.endpoint_create(
        access=owner,
        project=project,
        name="sim",
        base_url=simulator.base_url,
        model_name="sim-llama-3-8b",
        price_model="hosted_api",
        input_usd_per_mtok=1,
        output_usd_per_mtok=2,
    )
    plan = probes.probe_plan_create(
        access=owner,
        endpoint=endpoint,
        name="load",
        max_tokens=8,
        profile={"stages": [{"kind": "poisson", "rate": 10, "duration": 3}]},
        slo={"ttft_p95_ms": 5000},
    )
    run_until_evidence(access=owner, plan=plan)  # the worker's job, done before the browser starts
    base = live_server.url
    readiness = f"{base}/o/vandelay/projects/{project.slug}/readiness/"

    log_in(page, base, "olga")
    page.goto(readiness)
    assert _decision(page) == "NO-GO"
    page.select_option("[data-testid=template-select]", label="Launch basics (v1)")
    page.click("button:has-text('Add')")
    page.wait_for_selector(".msg.success")
    settled(page)
    reasons = page.inner_text("[data-testid=reasons]")
    assert "PII is redacted from logs" in reasons and "security sign-off missing" in reasons
    page.click("[data-testid=checklists] a:has-text('Launch basics')")
    alerts = page.locator('[data-testid="item-x.alerts"]')
    alerts.locator("summary:has-text('Answer')").click()
    alerts.locator("select[name=status]").select_option("pass")
    alerts.locator("textarea[name=evidence_text]").fill("PagerDuty rule 42, tested on 11-20")
    alerts.locator("button:has-text('Save answer')").click()
    page.wait_for_selector(".msg.success")
    assert page.locator('[data-testid="item-x.alerts"] [data-testid=status]').inner_text() == "Pass"
    assert page.locator('[data-testid="item-x.load"] [data-testid=status]').inner_text() == "Pass"  # by its rule
    pii = page.locator('[data-testid="item-x.pii"]')
    pii.locator("summary:has-text('Request a waiver')").click()
    pii.locator("textarea[name=reason]").fill("Redaction ships in the next release")
    pii.locator("select[name=risk_level]").select_option("medium")
    pii.locator("input[name=expires_on]").fill(str(timezone.localdate() + timedelta(days=30)))
    pii.locator("button:has-text('Request waiver')").click()
    page.wait_for_selector(".msg.success")
    checklist_url = page.url.split("#")[0]

    log_in(page, base, "sam")
    page.goto(checklist_url)
    page.locator('[data-testid="item-x.pii"] button:has-text("Approve")').click()
    page.wait_for_selector(".msg.success")
    assert "approved" in page.inner_text('[data-testid="item-x.pii"] [data-testid=waivers]')
    for name, function in (("sam", "security"), ("erin", "engineering"), ("fran", "finance")):
        if name != "sam":
            log_in(page, base, name)
        page.goto(readiness)
        gate = page.locator(f"[data-testid=gate-{function}]")
        gate.locator("select[name=verdict]").select_option("approve")
        gate.locator("button:has-text('Decide')").click()
        page.wait_for_selector(".msg.success")
        settled(page)  # the page reloads itself until the re-evaluation ran: not under the next form
    assert _decision(page) == "CONDITIONAL"
    assert "waived until" in page.inner_text("[data-testid=reasons]")

    log_in(page, base, "olga")
    page.goto(checklist_url)
    pii = page.locator('[data-testid="item-x.pii"]')
    pii.locator("summary:has-text('Answer')").click()
    pii.locator("select[name=status]").select_option("pass")
    pii.locator("textarea[name=evidence_text]").fill("Redaction live since release 3.2")
    pii.locator("button:has-text('Save answer')").click()
    page.wait_for_selector(".msg.success")
    page.goto(readiness)
    assert _decision(page) == "GO"
    page.click("[data-testid=generate-report]")
    page.wait_for_url("**/reports/*/")
    assert page.inner_text("[data-testid=report-decision]").strip() == "GO"
    page.screenshot(path=str(screenshot_dir() / "report.png"), full_page=True)
    page.goto(f"{base}/o/vandelay/")
    assert page.inner_text("[data-testid=decision-import-export-bot]").strip() == "GO"


def test_an_admin_configures_a_webhook_and_sees_a_delivery_after_a_decision_change(
    page, live_server, simulator, decision_worker
):
    from apps.integrations import services as integrations
    from apps.integrations.receiver import Receiver
    from apps.orgs.access import Access
    from apps.orgs.models import Role
    from apps.probes import services as probes
    from apps.projects import services as projects
    from apps.signoffs.services import policy_update

    receiver = Receiver()
    server = receiver.start()
    ada = make_user("ada")
    org = org_services.organization_create(name="Umbrella", slug="umbrella", owner=ada)
    owner = Access.for_user(ada)
    make_user("eng")
    org_services.membership_add(access=owner, org=org, username="eng", role=Role.MEMBER, functions=["engineering"])
    policy_update(access=owner, org=org, gates=[{"function": "engineering", "required": 1}])
    project = projects.project_create(access=owner, organization=org, name="Triage Bot")
    one_passing_checklist(access=owner, organization=org, project=project)
    endpoint = projects.endpoint_create(
        access=owner,
        project=project,
        name="sim",
        base_url=simulator.base_url,
        model_name="sim-llama-3-8b",
        price_model="hosted_api",
        input_usd_per_mtok=1,
        output_usd_per_mtok=2,
    )
    plan = probes.probe_plan_create(
        access=owner,
        endpoint=endpoint,
        name="load",
        max_tokens=8,
        profile={"stages": [{"kind": "poisson", "rate": 10, "duration": 2}]},
        slo={"ttft_p95_ms": 5000},
    )
    run_until_evidence(access=owner, plan=plan)
    base = live_server.url

    log_in(page, base, "ada")
    page.click("nav >> text=Integrations")
    page.fill("#id_name", "ops-relay")
    page.fill("#id_url", receiver.url)
    page.check("input[value='decision.changed']")
    page.click("button:has-text('Create connector')")
    secret = page.inner_text("[data-testid=new-secret] code")
    assert secret.startswith("whsec_")
    receiver.secret = secret
    page.click("[data-testid=new-secret] >> text=Open the connector")
    page.click("[data-testid=send-test]")
    page.wait_for_selector(".msg.success")
    assert "Test delivered: HTTP 200" in page.inner_text(".messages")
    connector_url = page.url

    log_in(page, base, "eng")
    page.goto(f"{base}/o/umbrella/projects/{project.slug}/readiness/")
    assert _decision(page) == "NO-GO"
    gate = page.locator("[data-testid=gate-engineering]")
    gate.locator("select[name=verdict]").select_option("approve")
    gate.locator("button:has-text('Decide')").click()
    page.wait_for_selector(".msg.success")
    assert _decision(page) == "GO", page.inner_text("[data-testid=reasons]")

    integrations.send_due()  # beat's job: the delivery queued by the decision change is sent
    log_in(page, base, "ada")
    page.goto(connector_url)
    rows = page.inner_text("[data-testid=deliveries]")
    assert "decision.changed" in rows and "Succeeded" in rows
    [change] = [r for r in receiver.received if r.json()["type"] == "decision.changed"]
    assert change.verified and change.json()["data"]["to"] == "GO"
    server.shutdown()


def test_a_usage_log_is_uploaded_read_and_replayed_as_a_probe_plan(
    page, live_server, simulator, transactional_db, tmp_path, settings
):
    from apps.costs import services as costs
    from apps.costs.models import UsageLog
    from apps.orgs.access import Access
    from apps.probes.models import ProbePlan
    from apps.projects import services as projects

    settings.MEDIA_ROOT = tmp_path / "media"
    kim = make_user("kim")
    org = org_services.organization_create(name="Hooli", slug="hooli", owner=kim)
    project = projects.project_create(access=Access.for_user(kim), organization=org, name="Search Assist")
    projects.endpoint_create(
        access=Access.for_user(kim),
        project=project,
        name="sim",
        base_url=simulator.base_url,
        model_name="sim-llama-3-8b",
        price_model="hosted_api",
        input_usd_per_mtok=1,
        output_usd_per_mtok=2,
    )
    rows = ["timestamp,user,tenant,input_tokens,output_tokens"]
    rows += [f"2026-11-02T09:00:{s:02d}Z,bot,t1,500,50" for s in range(50)]  # one user, 50 in a minute
    rows += [f"2026-11-02T{10 + u // 60:02d}:{u % 60:02d}:00Z,u{u},t2,500,50" for u in range(300)]
    log_file = tmp_path / "search-usage.csv"
    log_file.write_text("\n".join(rows) + "\n")

    log_in(page, live_server.url, "kim")
    page.goto(f"{live_server.url}/o/hooli/projects/{project.slug}/cost/")
    page.set_input_files("#usage input[type=file]", str(log_file))
    page.click("#usage button:has-text('Upload')")
    page.wait_for_selector(".msg.success")
    costs.usage_log_analyse(UsageLog.objects.get().pk)  # the worker's job
    page.click("[data-testid=usage-logs] >> text=search-usage.csv")
    summary = page.inner_text("[data-testid=usage-summary]")
    assert "50 requests at 2026-11-02 09:00 UTC" in summary and "(bot)" in summary
    form = page.locator("[data-testid=replay-form]")
    form.locator("input[name=scale]").fill("2")
    form.locator("input[name=seconds_per_minute]").fill("1")
    form.locator("button:has-text('Create replay plan')").click()
    page.wait_for_url("**/o/hooli/plans/**")
    assert "replay search-usage.csv x2" in page.inner_text("h1")
    plan = ProbePlan.objects.get()
    assert plan.profile["stages"][0]["rate"] == round(50 / 60 * 2, 6) and plan.max_tokens == 50


def _shot(page, name: str) -> None:
    """Screenshots for a person to look at, when READINESS_SHOTS names a folder."""
    folder = os.environ.get("READINESS_SHOTS")
    if folder:
        for width, height in ((1440, 900), (390, 844)):
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=f"{folder}/{name}-{width}.png", full_page=True)
        page.set_viewport_size({"width": 1440, "height": 900})


def test_a_member_checks_compatibility_and_reads_why_a_run_could_not_start(
    page, live_server, started, transactional_db
):
    from apps.orgs.access import Access
    from apps.probes import services as probe_services
    from apps.probes.execution import shard_execute
    from apps.projects import services as project_services
    from apps.simulator.scenarios import SimConfig, scenario

    user = make_user("dana")
    org = org_services.organization_create(name="Initech", slug="initech", owner=user)
    access = Access.for_user(user)
    project = project_services.project_create(access=access, organization=org, name="Claims Assistant")
    strict = started(scenario("strict"))
    endpoint = project_services.endpoint_create(
        access=access,
        project=project,
        name="strict-vllm",
        base_url=strict.base_url,
        model_name="sim-llama-3-8b",
        price_model="hosted_api",
        input_usd_per_mtok=1,
        output_usd_per_mtok=2,
    )

    page.goto(live_server.url + "/")
    page.fill("#id_username", "dana")
    page.fill("#id_password", "pw-dana")
    page.click("button[type=submit]")
    page.wait_for_url("**/o/initech/")
    page.goto(f"{live_server.url}/o/initech/projects/{project.slug}/")
    page.click("text=Compatibility")
    assert page.is_visible("[data-testid=never-checked]")
    page.click("[data-testid=check-compatibility]")
    page.wait_for_selector("[data-testid=compatibility-table]")
    row = page.locator("[data-testid=compatibility-table] tr", has_text="accepts stream_options")
    assert row.locator(".pill").inner_text() == "no"
    assert "left out by probes" in row.inner_text()
    _shot(page, "compatibility")

    # A key the server refuses: the run stops at its preflight and its page says why.
    keyed = started(SimConfig(api_key="the-right-key"))
    project_services.endpoint_update(
        access=access, endpoint=endpoint, base_url=keyed.base_url, api_key="sk-wrong-key-0123"
    )
    profile = {"stages": [{"kind": "poisson", "rate": 5, "duration": 1}]}
    plan = probe_services.probe_plan_create(access=access, endpoint=endpoint, name="baseline", profile=profile)
    run = probe_services.probe_run_start(access=access, plan=plan)
    for shard in run.shards.all():
        shard_execute(shard_id=shard.pk, org_id=org.pk)
    page.goto(f"{live_server.url}/o/initech/runs/{run.pk}/")
    diagnosis = page.locator("[data-testid=diagnosis]")
    assert diagnosis.is_visible()
    assert "API key" in diagnosis.inner_text() and "HTTP 401" in diagnosis.inner_text()
    assert "Bearer [redacted]" in page.locator("[data-testid=diagnosis-request]").inner_text()
    assert "sk-wrong-key" not in page.content()
    _shot(page, "diagnosis")


def test_a_delete_asks_first_under_the_content_security_policy(page, live_server, transactional_db):
    """The confirmation is app.js reading data-confirm (no inline handler): dismissed, nothing is
    deleted; accepted, the project goes."""
    from apps.orgs.access import Access
    from apps.projects import services as projects
    from apps.projects.models import Project

    user = make_user("fay")
    org = org_services.organization_create(name="Umbrella", slug="umbrella", owner=user)
    projects.project_create(access=Access.for_user(user), organization=org, name="Triage Bot")
    log_in(page, live_server.url, "fay")
    response = page.goto(f"{live_server.url}/o/umbrella/projects/triage-bot/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.click("form[data-confirm] button.danger")
    page.wait_for_timeout(300)
    assert asked == ["Delete this project and its endpoints?"]
    assert "/projects/triage-bot/" in page.url and Project.objects.filter(slug="triage-bot").exists()
    page.once("dialog", lambda d: d.accept())
    page.click("form[data-confirm] button.danger")
    page.wait_for_url("**/o/umbrella/")
    assert not Project.objects.filter(slug="triage-bot").exists()
