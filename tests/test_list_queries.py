"""Every API list answers in a number of queries that does not grow with its rows.

The routes are the tenancy matrix's API_LIST, so a list route added there is measured here too
(`test_every_api_list_route_is_measured`). For each, org A gets N more objects of the listed kind,
the list is read, then 2N more (3N in all) and it is read again: the second read may not take one
query more than the first, and neither may take more than a fixed bound (BOUND, EXTRA). Prefetches and
select_related keep it so; a serializer that touches a relation per row fails here.
"""

import time
from datetime import date, timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.checklists import services as checklists
from apps.checklists.services import ITEM_FIELDS
from apps.costs.models import Price, UsageLog
from apps.integrations import services as integrations
from apps.orgs import services as orgs
from apps.orgs.models import Role
from apps.probes import services as probes
from apps.probes.models import ProbeRun, RunStatus
from apps.projects import services as projects
from apps.reports.services import report_create
from apps.signoffs import services as signoffs
from tests.conftest import api_client_for, endpoint_fields, make_user
from tests.test_tenancy_matrix import API_LIST

N = 2

# What a list costs. A session: session, user, memberships (the access), then the page's count
# and rows; a token: the token, then count and rows.
BOUND = {"session": 5, "token": 3}
# One more query per prefetch; the queue reads the person's functions and each of its kinds of
# work (waivers, gates, follow-ups, blockers) as a whole, not per item, and is not paged by count.
EXTRA = {
    "api:checklistresponse-list": 1,  # waivers
    "api:checklisttemplate-list": 1,  # items
    "api:delivery-list": 1,  # attempts
    "api:me-queue": 6,
}


def _new_projects(w, n, tag):
    access = w.access(w.owner)
    return [projects.project_create(access=access, organization=w.org, name=f"Grown {tag}{i}") for i in range(n)]


def _organizations(w, n, tag):
    for i in range(n):
        orgs.organization_create(name=f"Grown {tag}{i}", slug=f"grown-{tag}{i}", owner=w.owner)


def _memberships(w, n, tag):
    for i in range(n):
        make_user(f"grown-{tag}{i}")
        orgs.membership_add(
            access=w.access(w.owner), org=w.org, username=f"grown-{tag}{i}", role=Role.MEMBER, functions=["legal"]
        )


def _endpoints(w, n, tag):
    for i, project in enumerate(_new_projects(w, n, tag)):
        projects.endpoint_create(access=w.access(w.owner), project=project, **endpoint_fields(api_key=f"sk-{tag}{i}"))


def _plans(w, n, tag):
    profile = {"stages": [{"kind": "poisson", "rate": 2, "duration": 5}]}
    for i in range(n):
        probes.probe_plan_create(access=w.access(w.owner), endpoint=w.endpoint, name=f"grown {tag}{i}", profile=profile)


def _runs(w, n, tag):
    # Finished runs, written directly: an org may have only a few runs queued at once.
    for _ in range(n):
        ProbeRun.objects.create(
            organization=w.org,
            plan=w.plan,
            config=w.run.config,
            planned_duration_s=5,
            start_at=time.time(),
            status=RunStatus.SUCCEEDED,
            summary={"overall": {"ttft_ms": {}, "e2e_ms": {}, "output_token_throughput": 0, "error_rate": 0}},
        )


def _templates(w, n, tag):
    items = list(w.template.items.values(*ITEM_FIELDS))
    for i in range(n):
        checklists.template_save_version(
            access=w.access(w.owner),
            organization=w.org,
            key=f"grown-{tag}{i}",
            name=f"Grown {tag}{i}",
            category="security",
            items=items,
        )


def _checklists(w, n, tag):
    for project in _new_projects(w, n, tag):
        checklists.checklist_add(access=w.access(w.owner), project=project, template=w.template)


def _waivers(w, n, tag):
    expires = date.today() + timedelta(days=5)
    for project in _new_projects(w, n, tag):
        checklist = checklists.checklist_add(access=w.access(w.owner), project=project, template=w.template)
        response = checklist.responses.order_by("pk").first()
        checklists.waiver_request(
            access=w.access(w.owner), response=response, reason="later", risk_level="low", expires_on=expires
        )


def _signoffs(w, n, tag):
    for i, project in enumerate(_new_projects(w, n, tag)):
        signoffs.signoff_decide(
            access=w.access(w.member),
            project=project,
            function="engineering",
            verdict="approve_with_conditions",
            conditions=[f"alert {tag}{i}"],
        )


def _reports(w, n, tag):
    for _ in range(n):
        report_create(access=w.access(w.owner), project=w.project)


def _connectors(w, n, tag):
    for i in range(n):
        hooks = {"name": f"hooks {tag}{i}", "url": "http://127.0.0.1:9/hooks", "events": ["decision.changed"]}
        integrations.connector_create(access=w.access(w.owner), organization=w.org, **hooks)


def _deliveries(w, n, tag):
    for _ in range(n):
        integrations.emit("decision.changed", project=w.project)


def _prices(w, n, tag):
    for i in range(n):
        Price.objects.create(
            organization=w.org,
            kind="gpu",
            name=f"Grown {tag}{i}",
            usd_per_gpu_hour=1,
            source="test",
            as_of=date.today(),
        )


def _usage_logs(w, n, tag):
    for i in range(n):
        UsageLog.objects.create(project=w.project, name=f"{tag}{i}.csv", file=ContentFile(b"x", name=f"{tag}{i}.csv"))


def _queue(w, n, tag):
    _waivers(w, n, tag)
    _signoffs(w, n, f"{tag}s")


GROW = {
    "api:organization-list": _organizations,
    "api:membership-list": _memberships,
    "api:project-list": _new_projects,
    "api:endpoint-list": _endpoints,
    "api:auditevent-list": _new_projects,  # each project_create writes its audit event
    "api:probeplan-list": _plans,
    "api:proberun-list": _runs,
    "api:checklisttemplate-list": _templates,
    "api:checklist-list": _checklists,
    "api:checklistresponse-list": _checklists,
    "api:waiver-list": _waivers,
    "api:signoff-list": _signoffs,
    "api:followup-list": _signoffs,
    "api:report-list": _reports,
    "api:connector-list": _connectors,
    "api:delivery-list": _deliveries,
    "api:price-list": _prices,
    "api:usagelog-list": _usage_logs,
    "api:me-queue": _queue,
}
# The queue is what a person may act on: the member decides the owner's waivers and owns follow-ups.
SESSION_USER = {"api:me-queue": "member"}
# An org token is nobody (its queue is empty) and sees one organization: its rows cannot grow.
TOKEN_SEES_NO_GROWTH = {"api:me-queue", "api:organization-list"}


def test_every_api_list_route_is_measured():
    assert set(GROW) == API_LIST


def _read(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, {"page_size": 500})
    assert response.status_code == 200, response.content
    return response.json()["count"], len(queries.captured_queries)


@pytest.mark.parametrize("name", sorted(API_LIST))
@pytest.mark.parametrize("who", ["session", "token"])
def test_an_api_list_takes_the_same_queries_for_n_and_3n_rows(w, tokens, name, who):
    if who == "session":
        client = api_client_for(getattr(w, SESSION_USER.get(name, "owner")))
    else:
        client = api_client_for(token=tokens["read"])
    url = reverse(name)
    client.get(url)  # a token's first use writes last_used_at once; measure the steady state
    GROW[name](w, N, "a")
    small_count, small = _read(client, url)
    GROW[name](w, 2 * N, "b")
    large_count, large = _read(client, url)

    if not (who == "token" and name in TOKEN_SEES_NO_GROWTH):
        assert large_count >= small_count + 2 * N
    assert large == small, f"{small} queries for {small_count} rows, {large} for {large_count}"
    assert large <= BOUND[who] + EXTRA.get(name, 0)
