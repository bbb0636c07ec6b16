"""Small things a new user meets, in headless Chromium: what waits for you stays in the top bar on
a phone, Revoke shows only to who may revoke, times read in the site's one format, a refused replay
keeps what was typed, charts sit inside their cards with plotly loaded without blocking the page,
and a run that proves nothing is grey in a report, not a miss.

A failing test leaves a screenshot of its pages under READINESS_VAR_DIR/screenshots/."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.checklists import services as checklists
from apps.checklists.models import ChecklistTemplate
from apps.orgs import invitations
from apps.orgs import services as org_services
from apps.orgs.models import Membership
from apps.probes import services as probe_services
from apps.probes.execution import shard_execute
from apps.probes.models import ProbePlan, ProbeRun
from apps.projects import services as project_services
from apps.reports import services as reports
from tests.browser import DESKTOP, PHONE, log_in
from tests.costs.test_cost_app import _analysed_log
from tests.readiness_helpers import run_until_evidence

pytestmark = pytest.mark.browser

SITE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$")


def give_functions(world, user, functions):
    membership = Membership.objects.get(organization=world.org, user=user)
    org_services.membership_update(
        access=world.access(world.owner), membership=membership, role=membership.role, functions=functions
    )


@pytest.fixture
def waiver(world):
    """A waiver on a security item, requested by the owner; the member holds engineering only."""
    checklists.ensure_shipped_templates(world.org)
    template = ChecklistTemplate.objects.filter(organization=world.org, key="security").order_by("-version").first()
    checklist = checklists.checklist_add(access=world.access(world.owner), project=world.project, template=template)
    response = checklists.current_responses(checklist).filter(item__function="security").first()
    until = timezone.localdate() + timedelta(days=30)
    return checklists.waiver_request(
        access=world.access(world.owner), response=response, reason="ships in Q3", risk_level="low", expires_on=until
    )


def _run(world, plan) -> ProbeRun:
    run = probe_services.probe_run_start(access=world.access(world.owner), plan=plan)
    for shard in run.shards.all():
        shard_execute(shard_id=shard.pk, org_id=world.org.pk)
    run.refresh_from_db()
    return run


def test_on_a_phone_the_waiting_badge_stays_in_the_top_bar_outside_the_folded_menu(browser, live_server, world, waiver):
    give_functions(world, world.member, ["security"])  # the member may now decide the owner's waiver and gate
    page = browser(PHONE)
    log_in(page, live_server.url, "member")
    page.goto(live_server.url + "/o/acme/")
    badge = page.locator("[data-testid=queue-badge]")
    assert badge.is_visible() and re.fullmatch(r"Waiting \(\d+\)", badge.inner_text())  # short on a phone
    assert not page.is_visible(".mainnav a:has-text('Members')")  # the menu is still folded
    box, menu = badge.bounding_box(), page.locator("[data-testid=menu-button]").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert abs(box["y"] + box["height"] / 2 - (menu["y"] + menu["height"] / 2)) < 4  # one row with the menu
    assert page.eval_on_selector(".topbar", "el => el.getBoundingClientRect().height") < 60
    badge.click()
    page.wait_for_url("**/queue/")

    desktop = browser(DESKTOP)
    log_in(desktop, live_server.url, "member")
    assert re.fullmatch(r"Waiting for you \(\d+\)", desktop.locator("[data-testid=queue-badge]").inner_text())


def test_on_a_phone_an_invitation_is_visible_without_opening_the_menu(browser, live_server, world):
    invitations.invitation_create(
        access=world.access(world.outsider), org=world.other_org, username="member", role="member", functions=[]
    )
    page = browser(PHONE)
    log_in(page, live_server.url, "member")
    page.goto(live_server.url + "/o/acme/")
    pill = page.locator("[data-testid=invitations-link]")
    assert pill.is_visible()
    box = pill.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


def test_revoke_shows_to_the_requester_and_not_to_a_member_without_the_items_function(
    browser, live_server, world, waiver
):
    url = f"{live_server.url}/o/acme/checklists/{waiver.response.checklist_id}/#item-{waiver.response.item.key}"
    page = browser()
    log_in(page, live_server.url, "member")
    page.goto(url)
    assert page.locator("[data-testid=waivers]").first.is_visible()
    assert page.locator("[data-testid=waiver-revoke]").count() == 0
    assert page.locator("button:has-text('Revoke')").count() == 0

    log_in(page, live_server.url, "owner")
    page.goto(url)
    revoke = page.locator("[data-testid=waiver-revoke]")
    assert revoke.count() == 1
    revoke.locator("input[name=reason]").fill("fixed instead")
    revoke.locator("button:has-text('Revoke')").click()
    page.wait_for_load_state()
    assert page.locator("[data-testid=waivers] .pill.waiver-revoked").count() == 1
    assert page.locator("[data-testid=waiver-revoke]").count() == 0


def test_the_decision_card_and_a_delivery_read_times_in_the_sites_one_format(browser, live_server, world):
    from apps.integrations import services as integrations
    from apps.integrations.models import Delivery
    from apps.reports.evaluation import refresh_project

    refresh_project(world.project)
    integrations.connector_create(
        access=world.access(world.owner),
        organization=world.org,
        name="hook",
        kind="webhook",
        url="https://hooks.example.com/in",
        events=["decision.changed"],
    )
    integrations.emit("decision.changed", project=world.project, data={"outcome": "NO-GO"})
    delivery = Delivery.objects.get()
    page = browser()
    log_in(page, live_server.url, "owner")
    page.goto(f"{live_server.url}/o/acme/projects/{world.project.slug}/readiness/")
    card = page.locator("p:has-text('Evaluated')").first
    assert SITE_TIME.match(card.locator("time").first.inner_text())
    page.goto(f"{live_server.url}/o/acme/deliveries/{delivery.pk}/")
    created = page.locator("main time").all_inner_texts()
    page.goto(f"{live_server.url}/o/acme/connectors/{delivery.connector_id}/")
    # In words, with the type the receiver sees in the payload beneath.
    assert page.locator("[data-testid=delivery-event]").inner_text().split("\n") == [
        "Go/no-go decision changed",
        "decision.changed",
    ]
    times = page.locator("time").all_inner_texts()
    assert times and all(SITE_TIME.match(t) for t in times + created)
    assert not re.search(r"\d{2}:\d{2}:\d{2}", page.inner_text("main"))  # no seconds: the old format


def test_a_refused_replay_keeps_what_was_typed_with_the_error_at_its_field(
    browser, live_server, world, settings, tmp_path
):
    log = _analysed_log(world, settings, tmp_path)
    page = browser()
    log_in(page, live_server.url, "member")
    page.goto(f"{live_server.url}/o/acme/usage-logs/{log.pk}/")
    form = page.locator("[data-testid=replay-form]")
    form.locator("input[name=scale]").fill("0")
    form.locator("input[name=seconds_per_minute]").fill("2.5")
    form.locator("button:has-text('Create replay plan')").click()
    page.wait_for_load_state()
    form = page.locator("[data-testid=replay-form]")
    assert form.locator("input[name=scale]").input_value() == "0"
    assert form.locator("input[name=seconds_per_minute]").input_value() == "2.5"
    scale = form.locator("[data-field=scale]")
    assert "has-error" in scale.get_attribute("class") and "Must be positive." in scale.inner_text()
    assert "seconds_per_minute" not in page.inner_text("main") and not ProbePlan.objects.exists()


def test_a_chart_sits_inside_its_card_and_plotly_loads_without_blocking_the_page(
    browser, live_server, world, simulator
):
    endpoint = project_services.endpoint_update(
        access=world.access(world.owner), endpoint=world.endpoint, base_url=simulator.base_url
    )
    plan = probe_services.probe_plan_create(
        access=world.access(world.owner),
        endpoint=endpoint,
        name="steady",
        max_tokens=8,
        profile={"stages": [{"kind": "poisson", "rate": 8, "duration": 2}]},
    )
    run = _run(world, plan)
    for viewport in (DESKTOP, PHONE):
        page = browser(viewport)
        log_in(page, live_server.url, "owner")
        page.goto(f"{live_server.url}/o/acme/runs/{run.pk}/")
        assert page.locator("script[src*=plotly]").get_attribute("defer") is not None
        page.wait_for_selector("[data-plotly] .main-svg")
        charts = page.evaluate("""() => [...document.querySelectorAll('[data-plotly]')].map(el => {
            const card = el.getBoundingClientRect(), style = getComputedStyle(el);
            const svg = el.querySelector('.main-svg');
            return {sizing: style.boxSizing, inline: el.style.boxSizing, drawn: !!svg,
                    right: svg ? svg.getBoundingClientRect().right : 0,
                    inner: card.right - parseFloat(style.paddingRight) - parseFloat(style.borderRightWidth),
                    height: card.height, plot: svg ? svg.getBoundingClientRect().height : 0};
        })""")
        assert charts
        for chart in charts:
            assert chart["sizing"] == "content-box" and chart["inline"] == ""  # the stylesheet does it
            if chart["drawn"]:
                assert chart["right"] <= chart["inner"] + 1
                assert chart["height"] <= chart["plot"] + 40  # no empty band under a drawn chart


def test_a_run_that_proves_nothing_is_grey_in_the_reports_attainment_chart(browser, live_server, world, simulator):
    endpoint = project_services.endpoint_update(
        access=world.access(world.owner), endpoint=world.endpoint, base_url=simulator.base_url
    )
    plan = probe_services.probe_plan_create(
        access=world.access(world.owner),
        endpoint=endpoint,
        name="steady",
        max_tokens=8,
        slo={"ttft_p95_ms": 5000},
        profile={"stages": [{"kind": "poisson", "rate": 8, "duration": 2}]},
    )
    run = _run(world, plan)
    # As a busy machine leaves it: the client lagged behind its schedule, so the run proves nothing.
    ProbeRun.objects.filter(pk=run.pk).update(summary={**run.summary, "client_saturated": True})
    report = reports.report_create(access=world.access(world.owner), project=world.project)
    page = browser()
    log_in(page, live_server.url, "owner")
    page.goto(f"{live_server.url}/o/acme/reports/{report.pk}/")
    chart = page.locator("[data-plotly]:has(.legendtext:text('not evidence (re-run)'))")
    chart.wait_for()
    colour = chart.locator(".bars path").first.evaluate("p => getComputedStyle(p).fill")
    assert colour == "rgb(140, 149, 159)"  # grey, not the red of a miss
    assert chart.locator(".legendtext:text('SLO missed')").count() == 0


def test_a_finished_run_reads_its_slo_checks_in_words_and_the_report_its_time_in_the_sites_format(
    browser, live_server, world, simulator
):
    endpoint = project_services.endpoint_update(
        access=world.access(world.owner), endpoint=world.endpoint, base_url=simulator.base_url
    )
    plan = probe_services.probe_plan_create(
        access=world.access(world.owner),
        endpoint=endpoint,
        name="strict",
        max_tokens=8,
        slo={"ttft_p95_ms": 0.001, "error_rate": 0.01},
        profile={"stages": [{"kind": "poisson", "rate": 8, "duration": 2}]},
    )
    run = _run(world, plan)
    page = browser()
    log_in(page, live_server.url, "owner")
    page.goto(f"{live_server.url}/o/acme/runs/{run.pk}/")
    checks = page.locator("[data-testid=slo-check]").all_inner_texts()
    assert any(re.fullmatch(r"TTFT p95 [\d.,]+ m?s \(target 0\.001 ms\)", c) for c in checks), checks
    assert "error rate 0.00% (target 1.00%)" in checks
    progress = page.inner_text("#progress")
    assert "remaining" not in progress and "— s" not in progress and "— ms" not in progress
    main = page.inner_text("main")
    assert "ttft_p95_ms" not in main and "error_rate" not in main
    page.goto(f"{live_server.url}/o/acme/plans/{plan.pk}/")
    targets = page.locator("[data-testid=slo-target]").all_inner_texts()
    assert sorted(targets) == ["TTFT p95 ≤ 0.001 ms", "error rate ≤ 1.00%"], targets
    assert "up to 8 output tokens each" in page.inner_text("main") and "max_tokens" not in page.inner_text("main")

    report = reports.report_create(access=world.access(world.owner), project=world.project)
    page.goto(f"{live_server.url}/o/acme/reports/{report.pk}/")
    row = page.locator("tr:has(td:text-is('strict'))").first
    assert SITE_TIME.match(row.locator("time").inner_text())
    assert "ttft_p95_ms" not in page.inner_text("main")


def test_an_endpoints_last_run_reads_in_words_and_its_actions_cell_lines_up_with_its_row(
    browser, live_server, world, simulator
):
    endpoint = project_services.endpoint_update(
        access=world.access(world.owner), endpoint=world.endpoint, base_url=simulator.base_url
    )
    plan = probe_services.probe_plan_create(
        access=world.access(world.owner),
        endpoint=endpoint,
        name="steady",
        max_tokens=8,
        profile={"stages": [{"kind": "poisson", "rate": 8, "duration": 1}]},
    )
    run = _run(world, plan)
    page = browser()
    log_in(page, live_server.url, "viewer")
    page.goto(f"{live_server.url}/o/acme/projects/{world.project.slug}/")
    last = page.locator("[data-testid=last-probe]").first.inner_text()
    assert f"run #{run.pk}" in last and "less than a minute ago" in last and "0 minutes" not in last
    row = page.locator("tr:has([data-testid=last-probe])").first
    cell = row.locator("td.actions")
    assert cell.evaluate("td => getComputedStyle(td).display") == "table-cell"
    assert abs(cell.bounding_box()["height"] - row.bounding_box()["height"]) < 2


def test_connectors_list_their_events_in_words(browser, live_server, world):
    from apps.integrations import services as integrations

    integrations.connector_create(
        access=world.access(world.owner),
        organization=world.org,
        name="hook",
        kind="webhook",
        url="https://hooks.example.com/in",
        events=["decision.changed", "probe.slo_missed"],
    )
    page = browser()
    log_in(page, live_server.url, "viewer")
    page.goto(f"{live_server.url}/o/acme/connectors/")
    events = page.locator("[data-testid=connector-events]").inner_text()
    assert events == "Go/no-go decision changed; A probe run missed its SLO"
    assert "decision.changed" not in page.inner_text("main")


def test_gate_cards_offer_room_to_write_and_say_who_decides_when_you_cannot(browser, live_server, world):
    page = browser()
    log_in(page, live_server.url, "member")  # engineering
    page.goto(f"{live_server.url}/o/acme/projects/{world.project.slug}/readiness/")
    form = page.locator("[data-testid=gate-engineering] [data-testid=gate-form]")
    assert form.locator("textarea[name=conditions]").get_attribute("rows") == "2"
    card, title = page.locator("[data-testid=gate-engineering]"), page.locator("[data-testid=gate-engineering] h3")
    assert title.bounding_box()["y"] - card.bounding_box()["y"] < 30  # the title starts the card
    waiting = page.locator("[data-testid=gate-security] [data-testid=gate-waiting]")
    assert "a holder of the security function decides this gate" in waiting.inner_text()


def test_the_audit_log_reads_each_time_and_action_on_one_line(browser, live_server, world):
    # A long change squeezes the other columns, as a real log's do.
    long_use = "Drafts answers to customer tickets from the knowledge base " * 8
    project_services.project_update(access=world.access(world.owner), project=world.project, use_case=long_use)
    page = browser()
    log_in(page, live_server.url, "owner")
    page.goto(f"{live_server.url}/o/acme/audit/")
    lines = page.evaluate("""() => [...document.querySelectorAll('tbody tr')].map(tr => {
        const time = tr.querySelector('time'), code = tr.querySelector('code.action');
        const line = n => parseFloat(getComputedStyle(n).lineHeight) || 20;
        return {time: time.getBoundingClientRect().height / line(time),
                action: code.getBoundingClientRect().height / line(code)};
    })""")
    assert lines and all(row["time"] < 1.5 and row["action"] < 1.5 for row in lines), lines


def test_a_viewer_is_not_told_they_can_change_an_answer(browser, live_server, world, waiver):
    url = f"{live_server.url}/o/acme/checklists/{waiver.response.checklist_id}/"
    page = browser()
    log_in(page, live_server.url, "viewer")
    page.goto(url)
    assert "open one to see its answer" in page.inner_text("main") and "or change" not in page.inner_text("main")
    assert page.locator("[data-testid=waiver-revoke], [data-testid=waiver-decide]").count() == 0
    log_in(page, live_server.url, "member")
    page.goto(url)
    assert "open one to see or change its answer" in page.inner_text("main")


def test_the_cost_page_speaks_of_its_settings_by_their_labels_and_prices_as_money(
    browser, live_server, world, simulator
):
    from apps.costs import services as cost_services
    from apps.demo.management.commands.seed_demo import DEMO_TRAFFIC

    endpoint = project_services.endpoint_update(
        access=world.access(world.owner), endpoint=world.endpoint, base_url=simulator.base_url
    )
    plan = probe_services.probe_plan_create(
        access=world.access(world.owner),
        endpoint=endpoint,
        name="steady",
        max_tokens=8,
        slo={"ttft_p95_ms": 5000},
        profile={"stages": [{"kind": "poisson", "rate": 8, "duration": 2}]},
    )
    run_until_evidence(access=world.access(world.owner), plan=plan)  # the projection needs evidence
    cost_services.traffic_save(access=world.access(world.owner), project=world.project, **DEMO_TRAFFIC)
    page = browser()
    log_in(page, live_server.url, "viewer")
    page.goto(f"{live_server.url}/o/acme/projects/{world.project.slug}/cost/")
    summary = page.locator("[data-testid=cost-summary]")
    text = summary.inner_text()
    assert "$0.80/GPU-h" in text and "scale_up_lead_s" not in text
    assert "time a new replica takes to be ready" in text
    gap = summary.evaluate("s => s.firstElementChild.getBoundingClientRect().top - s.getBoundingClientRect().top")
    assert gap < 30  # the card's padding, no heading margin on top of it
    page.goto(f"{live_server.url}/o/acme/projects/{world.project.slug}/readiness/")
    method = page.locator("[data-testid=cost-method]").inner_text()
    assert method.count("run #") == 1 and "endpoint primary" in method, method
