"""No GET anywhere changes state: it writes no row, sends no mail and queues no task.

A read-only token, a viewer or a crawler following links must be able to read every page and
every API route without moving a decision, writing an audit event or announcing anything. The
routes come from the tenancy matrix, which walks the URL conf, so a new route is covered here too.
"""

import pytest
from django.core import mail
from django.db import connection
from django.urls import reverse

from tests.conftest import api_client_for
from tests.test_tenancy_matrix import API_DETAIL, API_LIST, API_POST_ONLY, API_QUERY, HTML_POST_ONLY, HTML_ROUTES

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class Writes:
    """Records each statement that changes a row (an `execute_wrapper`)."""

    def __init__(self):
        self.statements: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(WRITES):
            self.statements.append(sql[:200])
        return execute(sql, params, many, context)


def assert_read_only(get, url, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    writes = Writes()
    with django_capture_on_commit_callbacks() as queued, connection.execute_wrapper(writes):
        status = get(url).status_code
    assert status < 500, f"GET {url} answered {status}"
    assert writes.statements == [], f"GET {url} wrote: {writes.statements}"
    assert mail.outbox == [], f"GET {url} sent mail"
    assert queued == [], f"GET {url} queued work after commit"


HTML_GETS = sorted(set(HTML_ROUTES) - HTML_POST_ONLY - {"invitation-answer"})


@pytest.mark.parametrize("name", HTML_GETS)
def test_no_html_page_writes_on_get(client, w, name, django_capture_on_commit_callbacks):
    client.force_login(w.owner)  # the admin: every page answers 200, even the forms
    client.get(reverse("dashboard", kwargs={"org_slug": w.org.slug}))  # the session is written once, here
    assert_read_only(client.get, reverse(name, kwargs=HTML_ROUTES[name](w)), django_capture_on_commit_callbacks)


API_GETS = sorted((set(API_DETAIL) - API_POST_ONLY) | API_LIST | set(API_QUERY))


@pytest.mark.parametrize("name", API_GETS)
def test_no_api_route_writes_on_get_with_a_read_token(w, tokens, name, django_capture_on_commit_callbacks):
    client = api_client_for(token=tokens["read"])
    if name in API_DETAIL:
        url = reverse(name, kwargs=API_DETAIL[name](w))
    elif name in API_QUERY:
        url = reverse(name) + API_QUERY[name](w)
    else:
        url = reverse(name)
    client.get(reverse("api:project-list"))  # the token's last-used time is written once, here
    assert_read_only(client.get, url, django_capture_on_commit_callbacks)
