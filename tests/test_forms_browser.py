"""Forms in Chromium: a refusal keeps what was typed and is shown at its field, in words; the
checklist page filters and collapses items and shows a save beside the item; forms show only
the fields that apply; the endpoint list links its last successful probe."""

import pytest

from apps.orgs import services as org_services
from tests.browser import log_in, screenshot_dir
from tests.conftest import make_user

pytestmark = pytest.mark.browser


def in_viewport(page, selector: str) -> bool:
    return page.eval_on_selector(
        selector,
        "el => { const r = el.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; }",
    )


@pytest.fixture
def team(transactional_db):
    from apps.checklists import services as checklists
    from apps.orgs.access import Access

    olga = make_user("olga")
    org = org_services.organization_create(name="Vandelay", slug="vandelay", owner=olga)
    owner = Access.for_user(olga)
    checklists.template_save_version(
        access=owner,
        organization=org,
        key="launch",
        name="Launch basics",
        category="security",
        items=[
            {"key": "x.pii", "title": "PII is redacted from logs", "severity": "blocker", "function": "security"},
            {"key": "x.alerts", "title": "Latency alerts page on-call", "severity": "major", "function": "engineering"},
            {"key": "x.runbook", "title": "A runbook exists", "severity": "minor", "function": "engineering"},
        ],
    )
    return org, owner


NOTE = "Runbook reviewed with on-call, see the wiki"


def test_a_refused_answer_keeps_the_note_and_status_and_the_saved_one_is_announced_beside_its_item(
    page, live_server, team
):
    from apps.checklists import services as checklists
    from apps.checklists.models import ChecklistTemplate
    from apps.projects import services as projects

    org, owner = team
    project = projects.project_create(access=owner, organization=org, name="Import Export Bot")
    template = ChecklistTemplate.objects.get(organization=org, key="launch")
    checklist = checklists.checklist_add(access=owner, project=project, template=template)
    checklists.response_answer(
        access=owner,
        response=checklists.current_responses(checklist).get(item__key="x.pii"),
        status="pass",
        evidence_text="Redaction live",
    )
    base = live_server.url
    log_in(page, base, "olga")
    page.set_viewport_size({"width": 1440, "height": 600})  # short: the last item is below the fold
    page.goto(f"{base}/o/vandelay/checklists/{checklist.pk}/")

    # Answered items are collapsed, open ones are open.
    assert page.locator('[data-testid="item-x.pii"]').get_attribute("open") is None
    assert page.locator('[data-testid="item-x.runbook"]').get_attribute("open") == ""
    assert not page.is_visible('[data-testid="item-x.pii"] >> text=Redaction live')

    runbook = page.locator('[data-testid="item-x.runbook"]')
    runbook.locator("summary:has-text('Answer')").click()
    runbook.locator("select[name=status]").select_option("pass")
    runbook.locator("textarea[name=evidence_text]").fill(NOTE)
    runbook.locator("input[name=evidence_url]").fill("javascript:alert(1)")
    runbook.locator("button:has-text('Save answer')").click()
    page.wait_for_load_state()

    runbook = page.locator('[data-testid="item-x.runbook"]')
    link_field = runbook.locator(".field.has-error")
    assert "Evidence link" in link_field.inner_text() and "Give an http(s) URL" in link_field.inner_text()
    assert "evidence_url" not in page.inner_text("main")
    assert (
        runbook.locator("textarea[name=evidence_text]").input_value() == "Runbook reviewed with on-call, see the wiki"
    )
    assert runbook.locator("select[name=status]").input_value() == "pass"
    assert runbook.locator("input[name=evidence_url]").input_value() == "javascript:alert(1)"
    assert in_viewport(page, '[data-testid="item-x.runbook"] .field.has-error')
    page.screenshot(path=str(screenshot_dir() / "checklist-answer-refused.png"))

    runbook.locator("input[name=evidence_url]").fill("https://wiki.example/runbooks/import-export")
    runbook.locator("button:has-text('Save answer')").click()
    page.wait_for_selector('[data-testid="item-x.runbook"] .msg.success')
    message = '[data-testid="item-x.runbook"] .msg.success'
    assert "“A runbook exists” is now pass" in page.inner_text(message)
    assert in_viewport(page, message)
    page.screenshot(path=str(screenshot_dir() / "checklist-answer-saved.png"))
    assert page.locator('[data-testid="item-x.runbook"] [data-testid=status]').inner_text() == "Pass"

    # Open items only: what is left to do.
    page.click("[data-testid=open-only]")
    page.wait_for_url("**?open=1")
    listed = page.locator("details.item").evaluate_all("els => els.map(e => e.dataset.testid)")
    assert listed == ["item-x.alerts"]
    page.screenshot(path=str(screenshot_dir() / "checklist-open-items.png"), full_page=True)


def test_forms_use_words_and_show_only_the_price_fields_that_apply(page, live_server, team, simulator):
    from apps.costs import services as costs
    from apps.costs.models import Price
    from apps.probes import services as probes
    from apps.probes.execution import shard_execute
    from apps.projects import services as projects

    org, owner = team
    base = live_server.url
    log_in(page, base, "olga")
    page.goto(f"{base}/o/vandelay/projects/new/")
    assert page.inner_text("label[for=id_monthly_budget_usd]").startswith("Monthly budget (USD)")
    assert page.inner_text("label[for=id_expected_peak_rpm]").startswith("Expected peak (requests per minute)")
    page.fill("#id_name", "Claims Assistant")
    page.fill("#id_monthly_budget_usd", "-5")
    page.click("button:has-text('Create project')")
    budget = page.locator(".field.has-error")
    assert "Monthly budget (USD)" in budget.inner_text()
    assert page.input_value("#id_name") == "Claims Assistant"
    page.fill("#id_monthly_budget_usd", "2500")
    page.click("button:has-text('Create project')")
    page.wait_for_url("**/projects/claims-assistant/")

    page.click("text=Add endpoint")
    assert page.inner_text("label[for=id_base_url]").startswith("Base URL")
    assert page.is_visible("#id_gpu_hourly_usd") and not page.is_visible("#id_input_usd_per_mtok")
    page.select_option("#id_price_model", "hosted_api")
    assert page.is_visible("#id_input_usd_per_mtok") and page.is_visible("#id_output_usd_per_mtok")
    assert not page.is_visible("#id_gpu_hourly_usd") and not page.is_visible("#id_max_replicas")
    page.screenshot(path=str(screenshot_dir() / "endpoint-form-hosted.png"), full_page=True)

    # A GPU price shows GPU-hour fields only; a hosted API price per-token fields only.
    costs.ensure_catalog(org)
    gpu = Price.objects.filter(organization=org, kind="gpu").first()
    api = Price.objects.filter(organization=org, kind="api").first()
    page.goto(f"{base}/o/vandelay/prices/{gpu.pk}/edit/")
    assert page.is_visible("#id_usd_per_gpu_hour") and page.locator("#id_usd_per_mtok_input").count() == 0
    assert "self-hosted endpoints" in page.inner_text("[data-testid=price-applies]")
    page.goto(f"{base}/o/vandelay/prices/{api.pk}/edit/")
    assert page.is_visible("#id_usd_per_mtok_input") and page.locator("#id_usd_per_gpu_hour").count() == 0
    page.click("button:has-text('Save price')")
    page.wait_for_url("**/prices/")

    # After a successful run, the endpoint list links it instead of "never".
    project = projects.project_create(access=owner, organization=org, name="Triage Bot")
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
    page.goto(f"{base}/o/vandelay/projects/{project.slug}/")
    assert "none yet" in page.inner_text("[data-testid=last-probe]")
    plan = probes.probe_plan_create(
        access=owner,
        endpoint=endpoint,
        name="load",
        max_tokens=8,
        profile={"stages": [{"kind": "poisson", "rate": 10, "duration": 2}]},
    )
    run = probes.probe_run_start(access=owner, plan=plan)
    for shard in run.shards.all():
        shard_execute(shard_id=shard.pk, org_id=org.pk)
    page.reload()
    cell = page.locator("[data-testid=last-probe]")
    assert f"run #{run.pk}" in cell.inner_text() and "ago" in cell.inner_text()
    cell.locator("a").click()
    page.wait_for_url(f"**/runs/{run.pk}/")
