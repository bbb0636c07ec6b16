"""Every chart page in headless Chromium: what plotly actually drew, read from the SVG.

Axis titles with their units, user-given names drawn as text (never markup), the autoscaling
chart's labels apart and its SLO line inside the plot, the cost chart's legend and labels, and
every chart inside its card at desktop and phone width. A failing check leaves a screenshot of
the page under READINESS_VAR_DIR/screenshots/.
"""

import json
import re
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import QuerySet

from apps.costs import services as cost_services
from apps.demo.management.commands.seed_demo import DEMO_TRAFFIC
from apps.probes import services as probe_services
from apps.probes.execution import shard_execute
from apps.projects import services as project_services
from apps.projects.models import Project
from apps.reports import services as report_services
from apps.reports.models import Report
from apps.simulator.scenarios import scenario
from tests.browser import screenshot_dir
from tests.conftest import endpoint_fields
from tests.readiness_helpers import run_until_evidence

pytestmark = pytest.mark.browser

EVIL = "<b>x</b><a href=//evil>y</a>"
AUTOSCALING = {"base_rate": 5, "peak_rate": 40, "base_s": 4, "hold_s": 12, "after_s": 8}

# For each chart on the page: its axes as plotly laid them out, with the title text it drew.
READ_CHARTS = """() => [...document.querySelectorAll('[data-plotly]')].map(el => {
  const full = el._fullLayout, card = el.getBoundingClientRect(), svg = el.querySelector('.main-svg');
  const axes = Object.keys(full).filter(k => /^[xy]axis\\d*$/.test(k)).map(k => full[k]).map(ax => ({
    id: ax._id, type: ax.type, anchor: ax.anchor, named: ax.tickmode === 'array' && !!ax.ticktext,
    drawn: (el.querySelector('.g-' + ax._id + 'title') || {}).textContent || ''}));
  return {id: el.id, axes, text: el.textContent,
          markup: el.querySelectorAll('svg a').length
                  + [...el.querySelectorAll('tspan')].filter(t => t.style.fontWeight === 'bold').length,
          overflow: svg.getBoundingClientRect().right - (card.right - parseFloat(getComputedStyle(el).paddingRight))};
})"""

BOXES = """(selector) => [...document.querySelectorAll(selector)].map(n => {
  const b = n.getBoundingClientRect(); return {text: n.textContent, l: b.left, r: b.right, t: b.top, b: b.bottom};
})"""


def _run(access, plan):
    """Start a run and do the worker's job in-process."""
    run = probe_services.probe_run_start(access=access, plan=plan)
    for shard in run.shards.all():
        shard_execute(shard_id=shard.pk, org_id=plan.endpoint.project.organization_id)
    run.refresh_from_db()
    return run


def _overlap(a, b) -> bool:
    return a["l"] < b["r"] - 0.5 and b["l"] < a["r"] - 0.5 and a["t"] < b["b"] - 0.5 and b["t"] < a["b"] - 0.5


@pytest.fixture
def charted(world, simulator, started):
    """A project with every kind of chart: a steady plan (named with markup) run twice, an
    autoscaling run, traffic and a budget (cost), a usage log, and two reports."""
    owner = world.access(world.owner)
    endpoint = project_services.endpoint_update(
        access=owner,
        endpoint=world.endpoint,
        base_url=simulator.base_url,
        metrics_url=simulator.base_url.removesuffix("/v1") + "/metrics",
    )
    plan = probe_services.probe_plan_create(
        access=owner,
        endpoint=endpoint,
        name=EVIL,
        max_tokens=8,
        slo={"ttft_p95_ms": 1000},
        profile={
            "stages": [
                {"kind": "poisson", "rate": 8, "duration": 2, "name": "steady"},
                {"kind": "poisson", "rate": 16, "duration": 2, "name": "peak"},
            ]
        },
    )
    # The newest run feeds the cost projection, so it must be evidence (not client-saturated).
    steady = [_run(owner, plan), run_until_evidence(access=owner, plan=plan)]
    sim = started(
        scenario(
            "autoscaling",
            slots=4,
            max_replicas=4,
            decision_interval_s=1.0,
            cold_start_s=4.0,
            scale_down_window_s=3.0,
            target_waiting_per_replica=2.0,
        )
    )
    scaling = project_services.endpoint_create(
        access=owner,
        project=world.project,
        **endpoint_fields(
            name="autoscaling",
            base_url=sim.base_url,
            max_replicas=4,
            metrics_url=sim.base_url.removesuffix("/v1") + "/metrics",
        ),
    )
    scaling_plan = probe_services.probe_plan_create(
        access=owner,
        endpoint=scaling,
        name="autoscale",
        max_tokens=20,
        profile={"autoscaling": AUTOSCALING},
        slo={"ttft_p95_ms": 300},
    )
    autoscaling = _run(owner, scaling_plan)
    # Noisy neighbours, a tenant named with markup; run here one shard after the other, so the
    # verdict is inconclusive (they did not start together), and both charts are drawn all the same.
    tenants_plan = probe_services.probe_plan_create(
        access=owner,
        endpoint=endpoint,
        name="neighbours",
        max_tokens=8,
        profile={
            "tenants": {
                "tenants": [
                    {"name": EVIL, "stages": [{"kind": "constant", "rate": 6, "duration": 3}]},
                    {"name": "noisy", "burst": {"at": 1, "requests": 12, "over": 1}},
                ]
            }
        },
    )
    tenants = _run(owner, tenants_plan)
    cost_services.traffic_save(access=owner, project=world.project, **DEMO_TRAFFIC)
    Project.objects.filter(pk=world.project.pk).update(monthly_budget_usd=Decimal("4000"))
    rows = ["timestamp,user,tenant,input_tokens,output_tokens"]
    rows += [f"2026-11-02T{h:02d}:{m:02d}:00Z,u{m % 7},t1,500,40" for h in range(8, 12) for m in range(0, 60, 3)]
    log = cost_services.usage_log_upload(
        access=owner, project=world.project, upload=SimpleUploadedFile("usage.csv", "\n".join(rows).encode())
    )
    cost_services.usage_log_analyse(log.pk)
    reports = [report_services.report_create(access=owner, project=world.project) for _ in range(2)]
    _as_stored_before_escaping(reports[0])
    return {
        "plan": plan,
        "steady": steady,
        "autoscaling": autoscaling,
        "tenants": tenants,
        "log": log,
        "report": reports[-1],
        "legacy_report": reports[0],
    }


def _as_stored_before_escaping(report) -> None:
    """The report as one generated before charts were escaped and titled in plotly.js 3's form:
    names as typed, titles as bare strings, no mark."""
    snapshot = json.loads(json.dumps(report.snapshot).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    for fig in snapshot["figures"].values():
        layout = fig["layout"]
        layout.pop("meta")
        for key, part in list(layout.items()):
            if key == "title" or key.startswith(("xaxis", "yaxis")):
                if key == "title":
                    layout[key] = part["text"]
                elif "title" in part:
                    part["title"] = part["title"]["text"]
    # Reports are immutable through the model and its queryset; this plays an old row.
    QuerySet.update(Report.objects.filter(pk=report.pk), snapshot=snapshot)


@contextmanager
def shot_on_failure(tab, name: str):
    try:
        yield
    except BaseException:
        tab.screenshot(path=str(screenshot_dir() / f"charts-{name}.png"), full_page=True)
        raise


def _charts(tab, url: str) -> list[dict]:
    tab.goto(url)
    tab.wait_for_function(
        "() => [...document.querySelectorAll('[data-plotly]')].every(el => el.querySelector('.main-svg'))"
    )
    return tab.evaluate(READ_CHARTS)


def _assert_titled_and_inside(charts: list[dict], page_name: str) -> None:
    assert charts, f"{page_name}: no chart drawn"
    for chart in charts:
        for ax in chart["axes"]:
            where = (page_name, chart["id"], ax["id"])
            assert ax["drawn"].strip(), f"{where}: axis drawn without a title"
            if ax["type"] != "category" and not ax["named"]:  # a category, or values named by their ticks
                assert "(" in ax["drawn"] and ax["drawn"].rstrip().endswith(")"), f"{where}: no unit in {ax['drawn']!r}"
            assert ax["anchor"] != "free", f"{where}: a free-floating axis"
        assert chart["overflow"] <= 1, (
            f"{page_name} {chart['id']}: the chart overflows its card by {chart['overflow']}px"
        )
        assert chart["markup"] == 0, f"{page_name} {chart['id']}: a user-given name was drawn as markup"


def test_every_chart_page_draws_titled_axes_with_units_text_not_markup_and_stays_in_its_cards(
    request, live_server, charted, world
):
    tab = request.getfixturevalue("page")
    base = live_server.url + "/o/acme"
    tab.set_viewport_size({"width": 1440, "height": 900})
    tab.goto(live_server.url + "/login/")
    tab.fill("#id_username", "owner")
    tab.fill("#id_password", "pw-owner")
    tab.click("button[type=submit]")
    tab.wait_for_url("**/o/acme/")
    slug = world.project.slug
    pages = {
        "project": f"{base}/projects/{slug}/",
        "plan": f"{base}/plans/{charted['plan'].pk}/",
        "run": f"{base}/runs/{charted['steady'][1].pk}/",
        "autoscaling-run": f"{base}/runs/{charted['autoscaling'].pk}/",
        "tenants-run": f"{base}/runs/{charted['tenants'].pk}/",
        "cost": f"{base}/projects/{slug}/cost/",
        "usage-log": f"{base}/usage-logs/{charted['log'].pk}/",
        "readiness": f"{base}/projects/{slug}/readiness/",
        "report": f"{base}/reports/{charted['report'].pk}/",
        "legacy report": f"{base}/reports/{charted['legacy_report'].pk}/",
    }
    drawn = {}
    for name, url in pages.items():
        with shot_on_failure(tab, name):
            drawn[name] = _charts(tab, url)
            _assert_titled_and_inside(drawn[name], name)
            assert not re.search(r"\bNone\b", tab.inner_text("main")), f"{name}: Python's None in the page text"
            if name == "autoscaling-run":
                _check_autoscaling(tab)
            if name == "cost":
                _check_cost(tab)
    # The plan named with markup reached two charts, drawn as its literal text.
    assert any(EVIL in c["text"] for c in drawn["project"]) and any(EVIL in c["text"] for c in drawn["report"])
    assert any(EVIL in c["text"] for c in drawn["legacy report"])
    assert {"fig-autoscaling", "fig-latency", "fig-throughput"} <= {c["id"] for c in drawn["autoscaling-run"]}
    # Each tenant's latency and the fairness chart, the tenant's markup drawn as text. (An inconclusive
    # run is not evidence, so the report leaves its chart out: tests/probes/test_tenant_plans.py has one.)
    tenant_charts = {c["id"]: c for c in drawn["tenants-run"]}
    assert {"fig-tenant-latency", "fig-fairness"} <= set(tenant_charts)
    assert EVIL in tenant_charts["fig-tenant-latency"]["text"] and EVIL in tenant_charts["fig-fairness"]["text"]

    tab.set_viewport_size({"width": 390, "height": 844})
    for name in ("run", "autoscaling-run", "tenants-run", "cost"):
        with shot_on_failure(tab, f"{name}-phone"):
            _assert_titled_and_inside(_charts(tab, pages[name]), f"{name} (phone)")


def _check_autoscaling(tab) -> None:
    labels = tab.evaluate(BOXES, "#fig-autoscaling .annotation")
    assert {"step up", "decide"} <= {a["text"] for a in labels}
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            assert not _overlap(a, b), f"mark labels overlap: {a['text']!r} and {b['text']!r}"
    # The SLO line runs across the plot area only, not into the margins where the axes are.
    slo = tab.evaluate("""() => {
      const el = document.getElementById('fig-autoscaling'), size = el._fullLayout._size;
      const i = el.layout.shapes.findIndex(s => (s.name || '').startsWith('TTFT p95 SLO'));
      const path = el.querySelector('.shapelayer path[data-index="' + i + '"]');
      const box = path.getBBox();
      return {left: box.x, right: box.x + box.width, l: size.l, r: size.l + size.w};
    }""")
    assert slo["left"] >= slo["l"] - 1 and slo["right"] <= slo["r"] + 1, slo
    # Named in the legend (not written on the line, where the rate line ran through it).
    legend = {t["text"] for t in tab.evaluate(BOXES, "#fig-autoscaling .legendtext")}
    assert any(t.startswith("TTFT p95 SLO") for t in legend), legend


def _check_cost(tab) -> None:
    legend = {t["text"] for t in tab.evaluate(BOXES, "#fig-options .legendtext")}
    traces = tab.evaluate("() => document.getElementById('fig-options').data.map(t => t.name)")
    assert set(traces) <= legend, (traces, legend)
    assert any(t.startswith("budget $4,000") for t in legend)
    assert tab.evaluate(BOXES, "#fig-options .shapelayer text, #fig-options .shape-label")  # the line's label
    ticks = tab.evaluate(BOXES, "#fig-options .ytick text")
    svg = tab.evaluate(BOXES, "#fig-options .main-svg")[0]
    assert ticks and all(t["l"] >= svg["l"] - 1 and t["r"] <= svg["r"] + 1 for t in ticks), "a tick label is clipped"
    for a, b in zip(ticks, ticks[1:], strict=False):
        assert not _overlap(a, b), f"tick labels overlap: {a['text']!r} and {b['text']!r}"
