"""A ticket's link comes from the ticketing server (GitHub's `html_url`): only an absolute http(s) URL
is stored and rendered as a link; anything else leaves the ticket with its key and no link."""

import importlib
import json

import pytest
from django.apps import apps as django_apps
from django.urls import reverse

from apps.integrations import services, ticketing
from apps.integrations.models import TicketLink
from apps.integrations.receiver import Receiver

UNSAFE = [
    "javascript:alert(document.cookie)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "javascript://github.com/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/issues/1",
    "/acme/copilot/issues/1",
    "github.com/acme/copilot/issues/1",
    "https://",
    "http://[::1",
    "https://github.com:99999/x",
    "https://github.com/acme/copilot/issues/1\n",
    "https://github.com/" + "a" * 500,
    "",
    None,
    42,
    ["https://github.com/acme/copilot/issues/1"],
]
SAFE = [
    "https://github.com/acme/copilot/issues/42",
    "http://ghe.internal:8080/acme/copilot/issues/42",
    "HTTPS://GitHub.com/acme/copilot/issues/42",
]


@pytest.mark.parametrize("value", UNSAFE)
def test_link_url_refuses_anything_but_an_absolute_http_url(value):
    assert ticketing.link_url(value) == ""


@pytest.mark.parametrize("value", SAFE)
def test_link_url_keeps_an_absolute_http_url(value):
    assert ticketing.link_url(value) == value


def test_github_create_response_with_a_script_url_gives_the_key_and_no_link():
    body = {"number": 7, "html_url": "javascript:alert(document.cookie)"}
    assert ticketing.ticket_from_response("github", "https://api.github.com", body) == ("7", "")


def test_jira_key_that_would_break_the_link_gives_no_link():
    assert ticketing.ticket_from_response("jira", "https://acme.atlassian.net", {"key": "OPS-1\nx"}) == ("OPS-1\nx", "")
    assert ticketing.ticket_from_response("jira", "https://acme.atlassian.net", {"key": "OPS-1"}) == (
        "OPS-1",
        "https://acme.atlassian.net/browse/OPS-1",
    )


def test_a_servicenow_ticket_links_into_the_connectors_own_table():
    body = {"result": {"sys_id": "9d3f"}}
    base = "https://acme.service-now.com"
    assert ticketing.ticket_from_response("servicenow", base, body, {"table": "change_request"}) == (
        "9d3f",
        f"{base}/nav_to.do?uri=change_request.do?sys_id=9d3f",
    )
    assert ticketing.ticket_from_response("servicenow", base, body, {}) == (
        "9d3f",
        f"{base}/nav_to.do?uri=incident.do?sys_id=9d3f",
    )


@pytest.fixture
def fake():
    r = Receiver()
    server = r.start()
    r.base = r.url.removesuffix("/hooks/readiness")
    yield r
    server.shutdown()


def _file_a_github_issue(world, fake, html_url):
    fake.replies = [(201, {}, json.dumps({"number": 42, "html_url": html_url}).encode())]
    connector, _ = services.connector_create(
        access=world.access(world.owner),
        organization=world.org,
        name="gh",
        kind="github",
        url=fake.base,
        config={"repo": "acme/copilot"},
        secret="ghp_token",
        events=["item.blocker_failed"],
    )
    [delivery] = services.emit("item.blocker_failed", project=world.project, finding_key="f", data={"title": "x"})
    services.attempt(delivery.pk)
    return connector


def _pages(client, world, connector):
    client.force_login(world.owner)
    connector_page = client.get(reverse("connector-detail", args=[world.org.slug, connector.pk]))
    readiness_page = client.get(reverse("project-readiness", args=[world.org.slug, world.project.slug]))
    assert connector_page.status_code == readiness_page.status_code == 200
    return connector_page.content.decode(), readiness_page.content.decode()


def test_a_github_issue_whose_html_url_is_a_script_is_kept_without_a_link(client, world, fake):
    connector = _file_a_github_issue(world, fake, "javascript:alert(document.cookie)")
    link = TicketLink.objects.get(connector=connector)
    assert (link.external_key, link.url) == ("42", "")
    for html in _pages(client, world, connector):
        assert "javascript:" not in html
        assert ">42<" in html  # the ticket is still listed, by its key


def test_a_github_issue_whose_html_url_is_https_is_linked(client, world, fake):
    connector = _file_a_github_issue(world, fake, "https://github.com/acme/copilot/issues/42")
    assert TicketLink.objects.get(connector=connector).url == "https://github.com/acme/copilot/issues/42"
    for html in _pages(client, world, connector):
        assert 'href="https://github.com/acme/copilot/issues/42"' in html


def test_the_migration_empties_links_stored_before_they_were_checked(world, fake):
    connector = _file_a_github_issue(world, fake, "https://github.com/acme/copilot/issues/42")
    good = TicketLink.objects.get(connector=connector)
    bad = TicketLink.objects.create(
        connector=connector, finding_key="g", external_key="43", url="javascript:alert(document.cookie)"
    )
    migration = importlib.import_module("apps.integrations.migrations.0004_drop_unsafe_ticket_links")
    migration.drop_unsafe_links(django_apps, None)
    good.refresh_from_db()
    bad.refresh_from_db()
    assert (good.url, bad.url) == ("https://github.com/acme/copilot/issues/42", "")
