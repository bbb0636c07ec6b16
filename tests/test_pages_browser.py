"""Pages in headless Chromium at a phone's width and on a desktop: nothing scrolls sideways, the
top bar folds behind a menu, user-given names cannot reorder the text around them, missing pages
keep the navigation, and each person sees only the forms they can submit.

A failing test leaves a screenshot under READINESS_VAR_DIR/screenshots/."""

import re

import pytest

from apps.checklists import services as checklists
from apps.checklists.models import ChecklistTemplate
from apps.projects import services as projects
from apps.signoffs import services as signoffs
from tests.browser import DESKTOP, PHONE, log_in

pytestmark = pytest.mark.browser


def overflow(page) -> int:
    """How many pixels the page is wider than the window (0: nothing scrolls sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


@pytest.fixture
def demo(world):
    """The world's project with a checklist, a waiver, a decided gate, a follow-up and a report:
    every section of the main pages has rows."""
    owner = world.access(world.owner)
    checklists.ensure_shipped_templates(world.org)
    template = ChecklistTemplate.objects.filter(organization=world.org, key="security").order_by("-version").first()
    checklist = checklists.checklist_add(access=owner, project=world.project, template=template)
    signoffs.signoff_decide(
        access=world.access(world.member),
        project=world.project,
        function="engineering",
        verdict="approve_with_conditions",
        conditions=["Add a dashboard for the p95 latency of every tenant " * 3],
    )
    from apps.reports import services as reports

    report = reports.report_create(access=owner, project=world.project)
    return {"checklist": checklist, "report": report}


def test_the_main_pages_fit_a_phone_and_the_top_bar_folds_behind_a_menu(browser, live_server, demo, world):
    page = browser(PHONE)
    log_in(page, live_server.url, "owner")
    slug = world.project.slug
    urls = [
        "/o/acme/",
        f"/o/acme/projects/{slug}/",
        f"/o/acme/projects/{slug}/readiness/",
        f"/o/acme/checklists/{demo['checklist'].pk}/",
        f"/o/acme/reports/{demo['report'].pk}/",
        "/o/acme/members/",
        "/o/acme/signoff-policy/",
        "/o/acme/audit/",
        "/o/acme/no-such-page/",
    ]
    for url in urls:
        page.goto(live_server.url + url)
        assert overflow(page) <= 0, f"{url} scrolls sideways by {overflow(page)} px"
        height = page.eval_on_selector(".topbar", "el => el.getBoundingClientRect().height")
        assert height < 90, f"the top bar of {url} is {height} px high"
        assert not page.is_visible(".mainnav a:has-text('Members')")

    page.goto(live_server.url + "/o/acme/")
    cell = page.locator("[data-testid=readiness-cell]").first.bounding_box()
    assert cell["x"] >= 0 and cell["x"] + cell["width"] <= PHONE["width"]  # the readiness column is on screen
    page.click("[data-testid=menu-button]")
    page.click(".mainnav a:has-text('Members')")
    page.wait_for_url("**/o/acme/members/")


def test_a_finished_runs_page_its_plan_and_the_cost_page_fit_a_phone(
    browser, live_server, simulator, world, transactional_db
):
    from apps.probes import services as probes
    from apps.probes.execution import shard_execute

    owner = world.access(world.owner)
    endpoint = projects.endpoint_update(
        access=owner,
        endpoint=world.endpoint,
        base_url=simulator.base_url,
        metrics_url=simulator.base_url.removesuffix("/v1") + "/metrics",
    )
    stages = [{"kind": "poisson", "rate": 5, "duration": 2}, {"kind": "constant", "rate": 8, "duration": 2}]
    plan = probes.probe_plan_create(
        access=owner,
        endpoint=endpoint,
        name="a plan with a rather long name for a phone screen",
        max_tokens=8,
        profile={"stages": stages},
        slo={"ttft_p95_ms": 2000},
    )
    run = probes.probe_run_start(access=owner, plan=plan)
    for shard in run.shards.all():  # the worker's job, in-process
        shard_execute(shard_id=shard.pk, org_id=world.org.pk)
    run.refresh_from_db()
    assert run.summary

    page = browser(PHONE)
    log_in(page, live_server.url, "owner")
    for url in (
        f"/o/acme/runs/{run.pk}/",
        f"/o/acme/plans/{plan.pk}/",
        f"/o/acme/projects/{world.project.slug}/cost/",
        "/o/acme/prices/",
    ):
        page.goto(live_server.url + url)
        page.wait_for_load_state("networkidle")  # charts drawn
        assert overflow(page) <= 0, f"{url} scrolls sideways by {overflow(page)} px"
        charts = page.query_selector_all(".js-plotly-plot")
        assert charts or "/runs/" not in url, "the run page draws its charts"
        for chart in charts:
            box = chart.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], f"a chart of {url} overflows"


def test_on_a_desktop_the_navigation_shows_without_a_menu(browser, live_server, world):
    page = browser(DESKTOP)
    log_in(page, live_server.url, "owner")
    page.goto(live_server.url + "/o/acme/")
    assert page.is_visible(".mainnav a:has-text('Members')")
    assert not page.is_visible("[data-testid=menu-button]")
    assert overflow(page) <= 0


def test_a_right_to_left_override_in_a_project_name_does_not_reorder_the_text_after_it(browser, live_server, world):
    rtl = projects.project_create(access=world.access(world.owner), organization=world.org, name="\u202eabc")
    page = browser(DESKTOP)
    log_in(page, live_server.url, "owner")
    page.goto(live_server.url + f"/o/acme/projects/{rtl.slug}/readiness/")
    link = page.locator("[data-testid=project-name]")
    assert link.evaluate("el => getComputedStyle(el).unicodeBidi") == "isolate"
    # The heading's own words stay after the name: the text node " · readiness" starts to the
    # right of the name's box (an override that spilled would draw it reversed, to its left).
    boxes = page.evaluate(
        """() => {
        const h1 = document.querySelector('h1');
        const name = h1.querySelector('[data-testid=project-name]').getBoundingClientRect();
        const tail = [...h1.childNodes].find(n => n.nodeType === 3 && n.textContent.includes('readiness'));
        const range = document.createRange(); range.selectNodeContents(tail);
        const rect = range.getBoundingClientRect();
        return {nameRight: name.right, tailLeft: rect.left, text: h1.innerText};
    }"""
    )
    assert boxes["tailLeft"] >= boxes["nameRight"] - 1, boxes
    assert boxes["text"].endswith("· readiness")


def test_a_missing_page_under_debug_shows_the_sites_404_with_the_navigation(browser, live_server, settings, world):
    settings.DEBUG = True
    page = browser(DESKTOP)
    log_in(page, live_server.url, "member")
    reply = page.goto(live_server.url + "/o/acme/projects/nope/")
    assert reply.status == 404
    assert page.is_visible("[data-testid=error-404]")
    assert page.is_visible(".mainnav a:has-text('Projects')")  # the organization's navigation stays
    assert "URLconf" not in page.content()


def test_a_viewer_sees_no_report_button_and_no_sign_off_form(browser, live_server, demo, world):
    page = browser(DESKTOP)
    log_in(page, live_server.url, "viewer")
    page.goto(live_server.url + f"/o/acme/projects/{world.project.slug}/readiness/")
    assert page.is_visible("[data-testid=decision]")
    assert page.locator("[data-testid=generate-report]").count() == 0
    assert page.locator("[data-testid=gate-form]").count() == 0
    assert page.locator("text=mark done").count() == 0


def test_the_report_sign_off_table_reads_as_words(browser, live_server, demo, world):
    page = browser(DESKTOP)
    log_in(page, live_server.url, "member")
    page.goto(live_server.url + f"/o/acme/reports/{demo['report'].pk}/")
    table = page.inner_text("[data-testid=report-signoffs]")
    assert "approved with conditions" in table and "approvedwithconditions" not in table
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", table)
