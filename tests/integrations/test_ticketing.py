"""Jira Cloud, ServiceNow and GitHub Issues contract tests: a local server plays the external system
and each test asserts the exact method, path, auth header and JSON body readiness sent."""

import base64
import json

import pytest

from apps.integrations import services, ticketing
from apps.integrations.models import Delivery, TicketLink
from apps.integrations.receiver import Receiver

EVENTS = ["item.blocker_failed", "item.blocker_passed", "decision.changed"]


@pytest.fixture
def fake():
    r = Receiver()
    server = r.start()
    r.base = r.url.removesuffix("/hooks/readiness")
    yield r
    server.shutdown()


def make(world, fake, kind, config, secret="s3cr3t-token"):
    connector, shown = services.connector_create(
        access=world.access(world.owner),
        organization=world.org,
        name=kind,
        kind=kind,
        url=fake.base,
        config=config,
        secret=secret,
        events=EVENTS,
    )
    assert shown is None  # only webhooks get a generated secret
    return connector


def fail_then_pass(world, times=3):
    """The same blocker fails `times` times (re-announced), then passes: one finding."""
    data = {
        "item": "sec.sensitive-data",
        "title": "PII is redacted",
        "function": "security",
        "from": "pending",
        "to": "fail",
    }
    for _ in range(times):
        for d in services.emit("item.blocker_failed", project=world.project, finding_key="item:1:sec.pii", data=data):
            services.attempt(d.pk)
            while Delivery.objects.get(pk=d.pk).status == "pending":  # multi-request actions
                services.attempt(d.pk)
    for d in services.emit(
        "item.blocker_passed",
        project=world.project,
        finding_key="item:1:sec.pii",
        data={**data, "from": "fail", "to": "pass"},
    ):
        while services.attempt(d.pk) and Delivery.objects.get(pk=d.pk).status == "pending":
            pass


def test_jira_creates_one_issue_comments_twice_and_transitions_it_when_fixed(world, fake):
    fake.replies = [
        (201, {}, b'{"id": "10001", "key": "OPS-7", "self": "x"}'),
        (201, {}, b"{}"),
        (201, {}, b"{}"),
        (204, {}, b""),
    ]
    connector = make(world, fake, "jira", {"email": "bot@acme.test", "project_key": "OPS", "done_transition_id": "41"})
    fail_then_pass(world)
    methods = [(r.method, r.path) for r in fake.received]
    issue = "/rest/api/3/issue"
    assert methods == [
        ("POST", issue),
        ("POST", f"{issue}/OPS-7/comment"),
        ("POST", f"{issue}/OPS-7/comment"),
        ("POST", f"{issue}/OPS-7/transitions"),
    ]
    create = fake.received[0]
    assert create.headers["Authorization"] == "Basic " + base64.b64encode(b"bot@acme.test:s3cr3t-token").decode()
    fields = create.json()["fields"]
    assert fields["project"] == {"key": "OPS"} and fields["issuetype"] == {"name": "Task"}
    assert fields["summary"] == "[readiness] Support Copilot: blocker failed: PII is redacted"
    assert fields["labels"] == ["readiness"]
    assert fields["description"]["type"] == "doc" and fields["description"]["version"] == 1
    first = {"type": "paragraph", "content": [{"type": "text", "text": "Blocker failed: PII is redacted."}]}
    assert fields["description"]["content"][0] == first
    assert fake.received[1].json()["body"]["type"] == "doc"
    transition = fake.received[3].json()
    assert (
        transition["transition"] == {"id": "41"} and transition["update"]["comment"][0]["add"]["body"]["type"] == "doc"
    )
    link = TicketLink.objects.get(connector=connector)
    assert (link.external_key, link.state, link.url) == ("OPS-7", "closed", f"{fake.base}/browse/OPS-7")


def test_servicenow_creates_an_incident_adds_work_notes_and_resolves_it(world, fake):
    fake.replies = [(201, {}, b'{"result": {"sys_id": "abc123", "number": "INC0010001"}}'), (200, {}, b"{}")]
    make(world, fake, "servicenow", {"table": "incident", "auth": "basic", "username": "readiness"})
    fail_then_pass(world, times=2)
    assert [(r.method, r.path) for r in fake.received] == [
        ("POST", "/api/now/table/incident"),
        ("PATCH", "/api/now/table/incident/abc123"),
        ("PATCH", "/api/now/table/incident/abc123"),
    ]
    assert fake.received[0].headers["Authorization"] == "Basic " + base64.b64encode(b"readiness:s3cr3t-token").decode()
    create = fake.received[0].json()
    assert create["short_description"].startswith("[readiness] Support Copilot") and create["category"] == "readiness"
    assert set(fake.received[1].json()) == {"work_notes"}
    resolve = fake.received[2].json()
    assert resolve["state"] == "6" and resolve["close_code"] == "Solved (Permanently)" and resolve["close_notes"]


def test_github_opens_comments_closes_and_reopens_one_issue(world, fake):
    fake.replies = [
        (201, {}, b'{"number": 42, "html_url": "https://github.com/acme/copilot/issues/42"}'),
        (201, {}, b"{}"),
    ]
    connector = make(world, fake, "github", {"repo": "acme/copilot"}, secret="ghp_token")
    fail_then_pass(world, times=2)
    assert [(r.method, r.path) for r in fake.received] == [
        ("POST", "/repos/acme/copilot/issues"),
        ("POST", "/repos/acme/copilot/issues/42/comments"),
        ("POST", "/repos/acme/copilot/issues/42/comments"),
        ("PATCH", "/repos/acme/copilot/issues/42"),
    ]
    headers = fake.received[0].headers
    assert headers["Authorization"] == "Bearer ghp_token" and headers["Accept"] == "application/vnd.github+json"
    assert headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert fake.received[0].json()["labels"] == ["readiness"]
    assert fake.received[3].json() == {"state": "closed", "state_reason": "completed"}
    assert TicketLink.objects.get(connector=connector).state == "closed"
    # It fails again: the same issue is reopened (PATCH open, then a comment), not a new one.
    fake.received.clear()
    fail_then_pass(world, times=1)
    assert [(r.method, r.path) for r in fake.received][:2] == [
        ("PATCH", "/repos/acme/copilot/issues/42"),
        ("POST", "/repos/acme/copilot/issues/42/comments"),
    ]
    assert fake.received[0].json() == {"state": "open"}
    assert TicketLink.objects.filter(connector=connector).count() == 1


def test_errors_from_the_ticketing_system_are_retried_or_refused_like_webhooks(world, fake):
    fake.replies = [(401, {}, b'{"errorMessages": ["auth"]}')]
    make(world, fake, "github", {"repo": "acme/copilot"})
    [d] = services.emit("item.blocker_failed", project=world.project, finding_key="f", data={"title": "x"})
    services.attempt(d.pk)
    d.refresh_from_db()
    assert (d.status, d.response_code) == ("failed", 401) and not TicketLink.objects.exists()
    fake.replies = [(429, {"Retry-After": "120"}, b"")]
    [d] = services.emit("item.blocker_failed", project=world.project, finding_key="g", data={"title": "x"})
    services.attempt(d.pk)
    d.refresh_from_db()
    assert d.status == "pending" and (d.next_attempt_at - d.last_attempt_at).total_seconds() >= 119
    fake.replies = [(201, {}, b'{"unexpected": true}')]
    [d] = services.emit("item.blocker_failed", project=world.project, finding_key="h", data={"title": "x"})
    services.attempt(d.pk)
    d.refresh_from_db()
    assert d.status == "pending" and "without the ticket's key" in d.error  # retried, not a silent success


def test_a_second_event_waits_for_the_first_so_a_finding_gets_one_ticket(world, fake):
    fake.replies = [(201, {}, b'{"number": 5, "html_url": "u"}'), (201, {}, b"{}")]
    make(world, fake, "github", {"repo": "acme/copilot"})
    (first,) = services.emit("item.blocker_failed", project=world.project, finding_key="k", data={"title": "x"})
    (second,) = services.emit("item.blocker_failed", project=world.project, finding_key="k", data={"title": "x"})
    assert services.attempt(second.pk) is None  # the earlier one has not been sent yet
    services.attempt(first.pk)
    Delivery.objects.filter(pk=second.pk).update(next_attempt_at=first.created_at)
    services.attempt(second.pk)
    assert [r.path for r in fake.received] == ["/repos/acme/copilot/issues", "/repos/acme/copilot/issues/5/comments"]


def test_send_test_reads_the_api_with_the_credentials_and_creates_nothing(world, fake):
    connector = make(world, fake, "jira", {"email": "bot@acme.test", "project_key": "OPS"})
    delivery = services.send_test(access=world.access(world.owner), connector=connector)
    assert delivery.status == "succeeded"
    assert [(r.method, r.path) for r in fake.received] == [("GET", "/rest/api/3/myself")]
    assert fake.received[0].headers["Authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    "kind, config, secret, field",
    [
        ("jira", {"project_key": "OPS"}, "t", "config"),
        ("github", {"repo": "nope"}, "t", "config"),
        ("servicenow", {"table": "incident"}, "", "secret"),
    ],
)
def test_a_ticketing_connector_without_what_it_needs_is_refused(world, kind, config, secret, field):
    from apps.core.errors import ApplicationError

    with pytest.raises(ApplicationError) as exc:
        services.connector_create(
            access=world.access(world.owner),
            organization=world.org,
            name="x",
            kind=kind,
            url="https://example.test",
            config=config,
            secret=secret,
            events=EVENTS,
        )
    assert field in exc.value.detail


@pytest.mark.parametrize(
    "event, data, state, action",
    [
        ("item.blocker_failed", {}, None, "create"),
        ("item.blocker_failed", {}, "open", "comment"),
        ("item.blocker_failed", {}, "closed", "reopen"),
        ("item.blocker_passed", {}, "open", "close"),
        ("item.blocker_passed", {}, None, "nothing"),
        ("decision.changed", {"to": "NO-GO"}, None, "create"),
        ("decision.changed", {"to": "GO"}, "open", "close"),
        ("decision.changed", {"to": "CONDITIONAL"}, "open", "comment"),
        ("decision.changed", {"to": "CONDITIONAL"}, None, "nothing"),
    ],
)
def test_the_action_for_each_event_and_ticket_state(event, data, state, action):
    assert ticketing.action_for(event, data, state) == action


def test_a_ticket_body_names_the_finding_and_links_back():
    finding = ticketing.finding_from_payload(
        {
            "type": "probe.slo_missed",
            "organization": "acme",
            "project": {"name": "Bot", "url": "http://r/o/acme/projects/bot/readiness/"},
            "data": {"plan": "nightly", "missed": ["ttft_p95_ms"]},
        }
    )
    assert finding.title == "[readiness] Bot: SLO missed: nightly"
    assert "missed: ['ttft_p95_ms']" in finding.text and finding.text.endswith(
        "http://r/o/acme/projects/bot/readiness/"
    )
    assert json.loads(json.dumps(ticketing.adf(finding.text)))["content"][0]["content"][0]["text"].startswith(
        "SLO missed"
    )


@pytest.mark.parametrize(
    "reply, delay, status, retried",
    [
        ((404, {}, b'{"message": "Not Found"}'), 0, "failed", False),
        ((500, {}, b"oops"), 0, "pending", True),
        ((201, {}, b'{"number": 1}'), 2.5, "pending", True),
    ],
)
def test_not_found_server_errors_and_timeouts_from_github(world, fake, settings, reply, delay, status, retried):
    settings.READINESS_OUTBOUND_TIMEOUT_SECONDS = 1
    fake.replies, fake.delay_s = [reply], delay
    make(world, fake, "github", {"repo": "acme/copilot"})
    [d] = services.emit("item.blocker_failed", project=world.project, finding_key="k", data={"title": "x"})
    services.attempt(d.pk)
    d.refresh_from_db()
    assert d.status == status and (d.next_attempt_at is not None) == retried
    if delay:
        assert d.response_code is None and "time limit" in d.error  # a hanging server is cut off, then retried
    assert not TicketLink.objects.exists()
