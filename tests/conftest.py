"""Shared setup, healthchecks-style: an owner, a member, a viewer in org A, an outsider in org B.

Objects of org A are what the outsider must never see; org B has its own project so
cross-org URLs (B's slug with A's object ids) can be tried too.
"""

from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from apps.orgs import services as org_services
from apps.orgs.access import Access
from apps.orgs.models import Role, TokenScope
from apps.projects import services as project_services
from apps.simulator.server import start_in_thread
from tests.browser import browser, page  # noqa: F401  (fixtures for the page tests)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, and at the end, on PostgreSQL, the sessions other threads
    (the live server, shard runners) left open are closed, so the test database can be dropped."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _test_settings(settings):
    # Tests talk to servers on 127.0.0.1; the guard tests turn this off where they need to.
    settings.READINESS_ALLOW_PRIVATE_ENDPOINTS = True
    # Password hashing is deliberately slow; the suite creates many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class World:
    org: object
    other_org: object
    owner: object
    member: object
    viewer: object
    outsider: object
    project: object
    endpoint: object
    other_project: object
    other_endpoint: object

    def access(self, user) -> Access:
        return Access.for_user(user)


def make_user(username: str):
    return get_user_model().objects.create_user(
        username=username, password="pw-" + username, email=f"{username}@x.test"
    )


def endpoint_fields(**overrides) -> dict:
    fields = dict(
        name="primary",
        base_url="http://127.0.0.1:9/v1",
        model_name="sim-llama-3-8b",
        price_model="self_hosted",
        gpu_type="NVIDIA L4",
        gpus_per_replica=1,
        gpu_hourly_usd=Decimal("0.80"),
        min_replicas=1,
        max_replicas=2,
    )
    fields.update(overrides)
    return fields


@pytest.fixture
def world(db) -> World:
    owner, member, viewer, outsider = (make_user(n) for n in ("owner", "member", "viewer", "outsider"))
    org = org_services.organization_create(name="Acme", slug="acme", owner=owner)
    other_org = org_services.organization_create(name="Globex", slug="globex", owner=outsider)
    owner_access = Access.for_user(owner)
    org_services.membership_add(
        access=owner_access, org=org, username="member", role=Role.MEMBER, functions=["engineering"]
    )
    org_services.membership_add(
        access=owner_access, org=org, username="viewer", role=Role.VIEWER, functions=["security"]
    )
    project = project_services.project_create(access=owner_access, organization=org, name="Support Copilot")
    endpoint = project_services.endpoint_create(
        access=owner_access, project=project, **endpoint_fields(api_key="sk-acme-very-secret")
    )
    outsider_access = Access.for_user(outsider)
    other_project = project_services.project_create(access=outsider_access, organization=other_org, name="Globex Bot")
    other_endpoint = project_services.endpoint_create(
        access=outsider_access, project=other_project, **endpoint_fields()
    )
    return World(org, other_org, owner, member, viewer, outsider, project, endpoint, other_project, other_endpoint)


def api_client_for(user=None, token: str | None = None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_login(user)
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def tokens(world) -> dict[str, str]:
    """Plaintext tokens of org A: one read-only, one read-write."""
    access = Access.for_user(world.owner)
    _, read = org_services.api_token_create(access=access, org=world.org, name="ci-read", scope=TokenScope.READ)
    _, rw = org_services.api_token_create(access=access, org=world.org, name="ci-rw", scope=TokenScope.READ_WRITE)
    return {"read": read, "read_write": rw}


@pytest.fixture
def simulator():
    server = start_in_thread()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def started():
    """Start simulators with other configs; all are shut down after the test."""
    sims = []

    def start(sim_config):
        sim = start_in_thread(config=sim_config)
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        sim.shutdown()
        sim.server_close()


def worker_env() -> dict:
    """The environment of a worker process that must see this test's database and broker."""
    import os

    from django.db import connection

    env = os.environ.copy()
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        user = db["USER"] or ""
        auth = f"{user}:{db['PASSWORD']}@" if db.get("PASSWORD") else (f"{user}@" if user else "")
        env["DATABASE_URL"] = f"postgres://{auth}{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env["READINESS_ALLOW_PRIVATE_ENDPOINTS"] = "true"
    return env


class Worker:
    """A real `celery worker` process on its own queue; `kill()` is a SIGKILL of the whole group."""

    def __init__(self, queue: str, concurrency: int = 2):
        import subprocess
        import sys

        from django.conf import settings

        self.queue = queue
        env = worker_env()
        # What a finished run sets off (the decision, the announcement, the scheduled report) goes
        # to this queue too, from this worker and from the test.
        env["READINESS_DECISION_QUEUE"] = queue
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "readiness",
                "worker",
                "-Q",
                queue,
                "-c",
                str(concurrency),
                "-l",
                "warning",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            start_new_session=True,
        )

    def kill(self, sig=None) -> None:
        import os
        import signal

        try:
            os.killpg(self.proc.pid, sig or signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=15)

    def stop(self) -> None:
        import signal
        import subprocess

        if self.proc.poll() is None:
            try:
                self.kill(signal.SIGTERM)
            except subprocess.TimeoutExpired:
                self.kill()


def _test_worker(settings):
    import uuid

    from django.core.cache import cache

    queue = f"test-{uuid.uuid4().hex[:8]}"
    settings.READINESS_PROBE_QUEUE = settings.READINESS_DECISION_QUEUE = queue
    cache.clear()  # no "re-evaluation queued" mark of an earlier test's project with the same id
    return Worker(queue)


@pytest.fixture
def probe_worker(settings, transactional_db):
    """A worker consuming a queue of its own; probe shards and what they set off (the decision's
    re-evaluation, announcements, scheduled reports) are routed to it for this test."""
    worker = _test_worker(settings)
    yield worker
    worker.stop()


@pytest.fixture
def decision_worker(settings, transactional_db):
    """The same worker, for tests that need only the decision's re-evaluation after a change."""
    worker = _test_worker(settings)
    yield worker
    worker.stop()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):
    """Poll until `predicate()` is truthy; returns its value or fails the test with a message."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


# Every kind of object in two organizations: the tenancy matrix and the read-only walk use it.
@pytest.fixture
def w(world, tokens):
    from apps.core.models import AuditEvent
    from apps.probes import services as probes

    world.org_events = lambda: AuditEvent.objects.filter(organization=world.org)
    profile = {"stages": [{"kind": "poisson", "rate": 2, "duration": 5}]}
    for org_access, endpoint, attr in (
        (world.owner, world.endpoint, ""),
        (world.outsider, world.other_endpoint, "other_"),
    ):
        plan = probes.probe_plan_create(
            access=world.access(org_access), endpoint=endpoint, name="smoke", profile=profile
        )
        setattr(world, f"{attr}plan", plan)
        setattr(world, f"{attr}run", probes.probe_run_start(access=world.access(org_access), plan=plan))
    _readiness_objects(world)
    return world


def _readiness_objects(world):
    """A template, checklist, response, waiver, sign-off with a follow-up and a report in each org."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.checklists import services as checklists
    from apps.checklists.models import ChecklistTemplate
    from apps.orgs.invitations import invitation_create
    from apps.orgs.models import Membership
    from apps.orgs.services import personal_token_create
    from apps.reports.services import report_create
    from apps.signoffs import services as signoffs

    Membership.objects.filter(user=world.outsider).update(functions=["engineering"])
    world.personal_token, _ = personal_token_create(
        access=world.access(world.member), org=world.org, name="mine", scope="read_write"
    )
    signoffs.policy_update(access=world.access(world.outsider), org=world.other_org, allow_owner_approval=True)
    for org, project, user, signer, attr in (
        (world.org, world.project, world.owner, world.member, ""),
        (world.other_org, world.other_project, world.outsider, world.outsider, "other_"),
    ):
        checklists.ensure_shipped_templates(org)
        template = ChecklistTemplate.objects.get(organization=org, key="security")
        checklist = checklists.checklist_add(access=world.access(user), project=project, template=template)
        response = checklist.responses.order_by("pk").first()
        expires = timezone.localdate() + timedelta(days=5)
        waiver = checklists.waiver_request(
            access=world.access(user), response=response, reason="later", risk_level="low", expires_on=expires
        )
        signoff = signoffs.signoff_decide(
            access=world.access(signer),
            project=project,
            function="engineering",
            verdict="approve_with_conditions",
            conditions=["add alerts"],
        )
        from apps.integrations import services as integrations

        hooks = {"name": "hooks", "url": "http://127.0.0.1:9/hooks", "events": ["decision.changed"]}
        connector, _ = integrations.connector_create(access=world.access(user), organization=org, **hooks)
        delivery = integrations.emit("decision.changed", project=project)[0]
        from apps.costs.models import Price
        from apps.costs.services import ensure_catalog

        ensure_catalog(org)
        from django.core.files.base import ContentFile

        from apps.costs.models import UsageLog

        usage_log = UsageLog.objects.create(project=project, name="usage.csv", file=ContentFile(b"x", name="u.csv"))
        objects = {
            "usage_log": usage_log,
            "template": template,
            "checklist": checklist,
            "response": response,
            "waiver": waiver,
            "price": Price.objects.filter(organization=org).first(),
            "connector": connector,
            "delivery": delivery,
            "signoff": signoff,
            "follow_up": signoff.follow_ups.get(),
            "report": report_create(access=world.access(user), project=project),
            "invitation": invitation_create(
                access=world.access(user), org=org, username=f"{attr}invitee", role="member", functions=[]
            ),
        }
        for name, obj in objects.items():
            setattr(world, f"{attr}{name}", obj)
