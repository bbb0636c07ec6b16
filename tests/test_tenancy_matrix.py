"""Every URL in the URL conf, tried by an outsider, an anonymous visitor, a viewer and a read token.

The test walks the URL conf: a new named route that is not listed below (or explicitly
public) fails `test_every_route_is_in_the_matrix`, so tenancy cannot be forgotten.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.conftest import api_client_for

# "inbound" is public by design: a signature over the body is its credential (tests/integrations/test_inbound.py).
PUBLIC = {"login", "logout", "healthz", "api:schema", "api:docs", "api:api-root", "home", "org-create", "inbound"}
# One's own account, in no organization (tests/orgs/test_auth.py).
PUBLIC |= {
    "password_change",
    "password_change_done",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
}
# One's own invitations, in no organization: only those addressed to the caller's username
# (tests/orgs/test_invitations.py).
PUBLIC |= {"invitations"}
# One's own "waiting for you" queue, across one's organizations (tests/test_queue.py).
PUBLIC |= {"queue"}
# The admin is its own site, superuser-only; tested separately below.
IGNORED_NAMESPACES = ("admin:",)


def org_kw(w, org=None):
    return {"org_slug": (org or w.org).slug}


# name -> kwargs for an object of org A. `cross` marks routes also tried as B's slug + A's object.
HTML_ROUTES = {
    "dashboard": lambda w: org_kw(w),
    "members": lambda w: org_kw(w),
    "member-edit": lambda w: {**org_kw(w), "pk": w.org.memberships.get(user=w.member).pk},
    "member-remove": lambda w: {**org_kw(w), "pk": w.org.memberships.get(user=w.member).pk},
    "tokens": lambda w: org_kw(w),
    "token-revoke": lambda w: {**org_kw(w), "pk": w.org.api_tokens.first().pk},
    "audit": lambda w: org_kw(w),
    "project-create": lambda w: org_kw(w),
    "project-detail": lambda w: {**org_kw(w), "slug": w.project.slug},
    "project-edit": lambda w: {**org_kw(w), "slug": w.project.slug},
    "project-delete": lambda w: {**org_kw(w), "slug": w.project.slug},
    "endpoint-create": lambda w: {**org_kw(w), "slug": w.project.slug},
    "endpoint-edit": lambda w: {**org_kw(w), "pk": w.endpoint.pk},
    "endpoint-test": lambda w: {**org_kw(w), "pk": w.endpoint.pk},
    "endpoint-compatibility": lambda w: {**org_kw(w), "pk": w.endpoint.pk},
    "endpoint-delete": lambda w: {**org_kw(w), "pk": w.endpoint.pk},
    "plan-create": lambda w: {**org_kw(w), "endpoint_pk": w.endpoint.pk},
    "plan-detail": lambda w: {**org_kw(w), "pk": w.plan.pk},
    "plan-edit": lambda w: {**org_kw(w), "pk": w.plan.pk},
    "plan-start": lambda w: {**org_kw(w), "pk": w.plan.pk},
    "plan-delete": lambda w: {**org_kw(w), "pk": w.plan.pk},
    "plan-compare": lambda w: {**org_kw(w), "pk": w.plan.pk},
    "run-detail": lambda w: {**org_kw(w), "pk": w.run.pk},
    "run-progress": lambda w: {**org_kw(w), "pk": w.run.pk},
    "run-cancel": lambda w: {**org_kw(w), "pk": w.run.pk},
    "run-summary-json": lambda w: {**org_kw(w), "pk": w.run.pk},
    "run-requests-csv": lambda w: {**org_kw(w), "pk": w.run.pk},
    "run-compare": lambda w: {**org_kw(w), "pk": w.run.pk, "other": w.run.pk},
    "probe-limits": lambda w: org_kw(w),
    "project-readiness": lambda w: {**org_kw(w), "slug": w.project.slug},
    "checklist-add": lambda w: {**org_kw(w), "slug": w.project.slug},
    "signoff-decide": lambda w: {**org_kw(w), "slug": w.project.slug},
    "report-create": lambda w: {**org_kw(w), "slug": w.project.slug},
    "follow-up-done": lambda w: {**org_kw(w), "pk": w.follow_up.pk},
    "report-detail": lambda w: {**org_kw(w), "pk": w.report.pk},
    "report-json": lambda w: {**org_kw(w), "pk": w.report.pk},
    "signoff-policy": lambda w: org_kw(w),
    "readiness-policy": lambda w: org_kw(w),
    "checklist-detail": lambda w: {**org_kw(w), "pk": w.checklist.pk},
    "checklist-upgrade": lambda w: {**org_kw(w), "pk": w.checklist.pk},
    "response-answer": lambda w: {**org_kw(w), "pk": w.response.pk},
    "response-evidence": lambda w: {**org_kw(w), "pk": w.response.pk},
    "waiver-request": lambda w: {**org_kw(w), "pk": w.response.pk},
    "waiver-decide": lambda w: {**org_kw(w), "pk": w.waiver.pk},
    "waiver-revoke": lambda w: {**org_kw(w), "pk": w.waiver.pk},
    "template-list": lambda w: org_kw(w),
    "template-detail": lambda w: {**org_kw(w), "pk": w.template.pk},
    "template-new-version": lambda w: {**org_kw(w), "pk": w.template.pk},
    "my-tokens": lambda w: org_kw(w),
    "my-token-revoke": lambda w: {**org_kw(w), "pk": w.personal_token.pk},
    "invitation-revoke": lambda w: {**org_kw(w), "pk": w.invitation.pk},
    "invitation-answer": lambda w: {"pk": w.invitation.pk, "answer": "accept"},
    "connectors": lambda w: org_kw(w),
    "connector-detail": lambda w: {**org_kw(w), "pk": w.connector.pk},
    "connector-test": lambda w: {**org_kw(w), "pk": w.connector.pk},
    "connector-delete": lambda w: {**org_kw(w), "pk": w.connector.pk},
    "delivery-detail": lambda w: {**org_kw(w), "pk": w.delivery.pk},
    "delivery-redeliver": lambda w: {**org_kw(w), "pk": w.delivery.pk},
    "inbound-rotate": lambda w: {**org_kw(w), "pk": w.connector.pk},
    "project-cost": lambda w: {**org_kw(w), "slug": w.project.slug},
    "prices": lambda w: org_kw(w),
    "price-edit": lambda w: {**org_kw(w), "pk": w.price.pk},
    "usage-log-upload": lambda w: {**org_kw(w), "slug": w.project.slug},
    "usage-log-detail": lambda w: {**org_kw(w), "pk": w.usage_log.pk},
    "usage-log-apply": lambda w: {**org_kw(w), "pk": w.usage_log.pk},
    "usage-log-replay": lambda w: {**org_kw(w), "pk": w.usage_log.pk},
    "usage-log-tenants": lambda w: {**org_kw(w), "pk": w.usage_log.pk},
    "usage-log-tenants-replay": lambda w: {**org_kw(w), "pk": w.usage_log.pk},
    "usage-log-from-stored": lambda w: {**org_kw(w), "slug": w.project.slug},
}
# Routes whose GET (or POST) changes something: a viewer must be refused.
HTML_WRITES = {
    "invitation-revoke",
    "project-create",
    "project-edit",
    "project-delete",
    "endpoint-create",
    "endpoint-edit",
    "endpoint-test",
    "endpoint-delete",
    "member-edit",
    "member-remove",
    "tokens",
    "token-revoke",
    "plan-create",
    "plan-edit",
    "plan-start",
    "plan-delete",
    "run-cancel",
    "probe-limits",
    "checklist-add",
    "signoff-decide",
    "report-create",
    "follow-up-done",
    "signoff-policy",
    "readiness-policy",
    "checklist-upgrade",
    "response-answer",
    "waiver-request",
    "waiver-decide",
    "waiver-revoke",
    "template-new-version",
    "connector-test",
    "connector-delete",
    "delivery-redeliver",
    "inbound-rotate",
    "price-edit",
    "project-cost",
    "usage-log-upload",
    "usage-log-apply",
    "usage-log-replay",
    "usage-log-tenants-replay",
    "usage-log-from-stored",
}
HTML_POST_ONLY = {
    "invitation-revoke",
    "invitation-answer",
    "project-delete",
    "endpoint-test",
    "endpoint-delete",
    "member-remove",
    "token-revoke",
    "plan-start",
    "plan-delete",
    "run-cancel",
    "checklist-add",
    "signoff-decide",
    "report-create",
    "follow-up-done",
    "checklist-upgrade",
    "response-answer",
    "waiver-request",
    "waiver-decide",
    "waiver-revoke",
    "my-token-revoke",
    "connector-test",
    "connector-delete",
    "delivery-redeliver",
    "inbound-rotate",
    "usage-log-upload",
    "usage-log-apply",
    "usage-log-replay",
    "usage-log-tenants-replay",
    "usage-log-from-stored",
}
HTML_GET_ONLY = {
    "dashboard",
    "project-detail",
    "audit",
    "plan-detail",
    "run-detail",
    "run-progress",
    "run-summary-json",
    "run-requests-csv",
    "run-compare",
    "project-readiness",
    "report-detail",
    "report-json",
    "checklist-detail",
    "response-evidence",
    "template-list",
    "template-detail",
    "delivery-detail",
    "prices",
    "usage-log-detail",
    "usage-log-tenants",
    "plan-compare",
}
# Pages everyone in the org may read, whose POST needs an admin.
HTML_ADMIN_POST = {"probe-limits", "signoff-policy", "readiness-policy", "connectors", "connector-detail"}
# Pages everyone in the org may read, whose POST needs a writer.
HTML_WRITER_POST = {"project-cost", "endpoint-compatibility"}


def html_methods(name: str) -> list[str]:
    if name in HTML_POST_ONLY:
        return ["post"]
    return ["get"] if name in HTML_GET_ONLY else ["get", "post"]


API_DETAIL = {
    "api:organization-detail": lambda w: {"slug": w.org.slug},
    "api:readinesspolicy-detail": lambda w: {"slug": w.org.slug},
    "api:membership-detail": lambda w: {"pk": w.org.memberships.first().pk},
    "api:project-detail": lambda w: {"pk": w.project.pk},
    "api:endpoint-detail": lambda w: {"pk": w.endpoint.pk},
    "api:endpoint-test-connection": lambda w: {"pk": w.endpoint.pk},
    "api:endpoint-compatibility": lambda w: {"pk": w.endpoint.pk},
    "api:auditevent-detail": lambda w: {"pk": w.org_events().first().pk},
    "api:probeplan-detail": lambda w: {"pk": w.plan.pk},
    "api:probeplan-start": lambda w: {"pk": w.plan.pk},
    "api:proberun-detail": lambda w: {"pk": w.run.pk},
    "api:proberun-cancel": lambda w: {"pk": w.run.pk},
    "api:proberun-records": lambda w: {"pk": w.run.pk},
    "api:proberun-compare": lambda w: {"pk": w.run.pk},
    "api:project-readiness": lambda w: {"pk": w.project.pk},
    "api:project-findings": lambda w: {"pk": w.project.pk},
    "api:project-cost": lambda w: {"pk": w.project.pk},
    "api:project-traffic": lambda w: {"pk": w.project.pk},
    "api:price-detail": lambda w: {"pk": w.price.pk},
    "api:usagelog-detail": lambda w: {"pk": w.usage_log.pk},
    "api:usagelog-apply": lambda w: {"pk": w.usage_log.pk},
    "api:usagelog-replay": lambda w: {"pk": w.usage_log.pk},
    "api:usagelog-tenants-plan": lambda w: {"pk": w.usage_log.pk},
    "api:usagelog-tenants-replay": lambda w: {"pk": w.usage_log.pk},
    "api:checklisttemplate-detail": lambda w: {"pk": w.template.pk},
    "api:checklist-detail": lambda w: {"pk": w.checklist.pk},
    "api:checklist-upgrade": lambda w: {"pk": w.checklist.pk},
    "api:checklistresponse-detail": lambda w: {"pk": w.response.pk},
    "api:checklistresponse-answer": lambda w: {"pk": w.response.pk},
    "api:waiver-detail": lambda w: {"pk": w.waiver.pk},
    "api:waiver-approve": lambda w: {"pk": w.waiver.pk},
    "api:waiver-reject": lambda w: {"pk": w.waiver.pk},
    "api:waiver-revoke": lambda w: {"pk": w.waiver.pk},
    "api:signoff-detail": lambda w: {"pk": w.signoff.pk},
    "api:followup-detail": lambda w: {"pk": w.follow_up.pk},
    "api:followup-done": lambda w: {"pk": w.follow_up.pk},
    "api:report-detail": lambda w: {"pk": w.report.pk},
    "api:connector-detail": lambda w: {"pk": w.connector.pk},
    "api:connector-test": lambda w: {"pk": w.connector.pk},
    "api:delivery-detail": lambda w: {"pk": w.delivery.pk},
    "api:delivery-redeliver": lambda w: {"pk": w.delivery.pk},
}
API_LIST = {
    "api:organization-list",
    "api:membership-list",
    "api:project-list",
    "api:endpoint-list",
    "api:auditevent-list",
    "api:probeplan-list",
    "api:proberun-list",
    "api:checklisttemplate-list",
    "api:checklist-list",
    "api:checklistresponse-list",
    "api:waiver-list",
    "api:signoff-list",
    "api:followup-list",
    "api:report-list",
    "api:connector-list",
    "api:delivery-list",
    "api:price-list",
    "api:usagelog-list",
    "api:me-queue",
}
API_POST_ONLY = {
    "api:endpoint-test-connection",
    "api:probeplan-start",
    "api:proberun-cancel",
    "api:checklist-upgrade",
    "api:checklistresponse-answer",
    "api:waiver-approve",
    "api:waiver-reject",
    "api:waiver-revoke",
    "api:followup-done",
    "api:connector-test",
    "api:delivery-redeliver",
    "api:usagelog-apply",
    "api:usagelog-replay",
    "api:usagelog-tenants-replay",
}
# Collection routes that name an object of the org in their query: the outsider naming org A's gets 404.
API_QUERY = {"api:usagelog-stored-logs": lambda w: f"?project={w.project.pk}"}
API_WRITABLE_DETAIL = {"api:project-detail", "api:endpoint-detail", "api:probeplan-detail", "api:connector-detail"}


def _names(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = f"{prefix}{p.namespace}:" if p.namespace else prefix
            yield from _names(p.url_patterns, ns)
        elif isinstance(p, URLPattern) and p.name:
            yield prefix + p.name


def test_every_route_is_in_the_matrix():
    names = {n for n in _names(get_resolver().url_patterns) if not n.startswith(IGNORED_NAMESPACES)}
    covered = PUBLIC | set(HTML_ROUTES) | set(API_DETAIL) | API_LIST | set(API_QUERY)
    assert names - covered == set(), "add the new route to the tenancy matrix"


@pytest.mark.parametrize("name", sorted(HTML_ROUTES))
def test_outsider_gets_404_on_every_html_page(client, w, name):
    client.force_login(w.outsider)
    url = reverse(name, kwargs=HTML_ROUTES[name](w))
    for method in html_methods(name):
        assert getattr(client, method)(url, {"name": "x"}).status_code == 404


@pytest.mark.parametrize("name", sorted(HTML_ROUTES))
def test_outsider_gets_404_with_own_org_slug_and_foreign_object(client, w, name):
    kwargs = HTML_ROUTES[name](w)
    if set(kwargs) == {"org_slug"} or "org_slug" not in kwargs:
        return  # nothing foreign to point at (the outsider's own org), or no org in the URL at all
    client.force_login(w.outsider)
    url = reverse(name, kwargs={**kwargs, "org_slug": w.other_org.slug})
    for method in html_methods(name):
        assert getattr(client, method)(url, {"name": "x"}).status_code == 404


@pytest.mark.parametrize("name", sorted(HTML_ROUTES))
def test_anonymous_is_sent_to_login_from_every_html_page(client, w, name):
    url = reverse(name, kwargs=HTML_ROUTES[name](w))
    for method in html_methods(name):
        response = getattr(client, method)(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", sorted(HTML_WRITES))
def test_viewer_cannot_write_through_html(client, w, name):
    client.force_login(w.viewer)
    url = reverse(name, kwargs=HTML_ROUTES[name](w))
    methods = ["post"] if name in HTML_ADMIN_POST | HTML_WRITER_POST else html_methods(name)
    for method in methods:
        assert getattr(client, method)(url, {"name": "hijack", "role": "owner"}).status_code == 403


def _api_detail_url(w, name):
    return reverse(name, kwargs=API_DETAIL[name](w))


@pytest.mark.parametrize("name", sorted(API_DETAIL))
@pytest.mark.parametrize("who", ["outsider", "outsider_token"])
def test_outsider_gets_404_on_every_api_object(w, name, who):
    from apps.orgs import services
    from apps.orgs.access import Access

    if who == "outsider":
        client = api_client_for(w.outsider)
    else:
        _, plaintext = services.api_token_create(
            access=Access.for_user(w.outsider), org=w.other_org, name="b", scope="read_write"
        )
        client = api_client_for(token=plaintext)
    url = _api_detail_url(w, name)
    if name not in API_POST_ONLY:
        assert client.get(url).status_code == 404
    assert client.post(url, {}, format="json").status_code in (404, 405)
    if name in API_WRITABLE_DETAIL:
        assert client.patch(url, {"name": "x"}, format="json").status_code == 404
        assert client.delete(url).status_code == 404


@pytest.mark.parametrize("name", sorted(API_LIST))
def test_outsider_api_lists_hold_nothing_of_org_a(w, name):
    body = api_client_for(w.outsider).get(reverse(name)).json()
    text = str(body)
    assert body["count"] >= 1  # the outsider does see their own organization's rows
    assert "acme" not in text and "Support Copilot" not in text and "sk-acme" not in text


@pytest.mark.parametrize("name", sorted(API_QUERY))
def test_outsider_gets_404_naming_org_as_objects_in_a_query(w, name):
    assert api_client_for(w.outsider).get(reverse(name) + API_QUERY[name](w)).status_code == 404
    assert api_client_for(w.owner).get(reverse(name) + API_QUERY[name](w)).status_code == 200


@pytest.mark.parametrize("name", sorted(set(API_DETAIL) | API_LIST | set(API_QUERY)))
def test_anonymous_gets_401_from_every_api_route(w, name):
    url = _api_detail_url(w, name) if name in API_DETAIL else reverse(name)
    response = api_client_for().get(url)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("principal", ["viewer", "read_token"])
def test_viewer_and_read_token_cannot_write_through_the_api(w, tokens, principal):
    client = api_client_for(w.viewer) if principal == "viewer" else api_client_for(token=tokens["read"])
    project_url = reverse("api:project-detail", kwargs={"pk": w.project.pk})
    endpoint_url = reverse("api:endpoint-detail", kwargs={"pk": w.endpoint.pk})
    assert client.get(project_url).status_code == 200  # reading is fine
    assert client.patch(project_url, {"name": "x"}, format="json").status_code == 403
    assert client.delete(endpoint_url).status_code == 403
    assert client.post(reverse("api:project-list"), {"name": "new"}, format="json").status_code == 403
    test_url = reverse("api:endpoint-test-connection", kwargs={"pk": w.endpoint.pk})
    assert client.post(test_url).status_code == 403
    assert client.post(reverse("api:probeplan-start", kwargs={"pk": w.plan.pk})).status_code == 403
    assert client.post(reverse("api:proberun-cancel", kwargs={"pk": w.run.pk})).status_code == 403
    assert w.plan.runs.count() == 1
    w.project.refresh_from_db()
    assert w.project.name == "Support Copilot"


def test_admin_site_is_for_superusers_only(client, w):
    w.owner.is_staff = True
    w.owner.save()
    client.force_login(w.owner)
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    w.owner.is_superuser = True
    w.owner.save()
    assert client.get("/admin/").status_code == 200


# --- filters -------------------------------------------------------------------------------------
# Every filterable list route, from the router: a new viewset with filters is walked without being
# listed here. For each filter that names an object (its path ends on a primary key or another unique
# field, `project`, `checklist__project_id`, `organization__slug`), the outsider naming org A's object
# must get exactly what naming a missing one gets, and no filter form may list org A's rows.


def _router_lists() -> dict[str, type]:
    from readiness.api_urls import router

    return {f"api:{basename}-list": viewset for _, viewset, basename in router.registry}


FILTERABLE_LISTS = sorted(
    name
    for name, viewset in _router_lists().items()
    if getattr(viewset, "filterset_class", None) or getattr(viewset, "filterset_fields", None)
)


def _filterset_class(name: str, user):
    """The filter set the list route really uses: the view's own filter backends, its own queryset."""
    from rest_framework.test import APIRequestFactory, force_authenticate

    request = APIRequestFactory().get(reverse(name))
    force_authenticate(request, user=user)
    view = _router_lists()[name](action_map={"get": "list"}, args=(), kwargs={}, format_kwarg=None)
    view.request = view.initialize_request(request)
    queryset = view.get_queryset()
    for backend in view.filter_backends:
        if hasattr(backend, "get_filterset_class"):
            return backend().get_filterset_class(view, queryset)
    return None


def _identifying_filters(filterset_class) -> list[tuple[str, type, object]]:
    """(param, model, field) for each filter whose value names one object: the model it lands on and
    that model's primary key or unique field."""
    found = []
    for param, f in filterset_class.base_filters.items():
        model, field = filterset_class._meta.model, None
        for part in f.field_name.split("__"):
            field = model._meta.get_field(part)  # a filter over a path that does not resolve fails here
            if field.is_relation:
                model, field = field.related_model, field.related_model._meta.pk
        if field.primary_key or field.unique:
            found.append((param, model, field))
    return found


def _org_a_objects(w) -> dict[type, object]:
    from django.db.models import Model

    objects = {type(w.org): w.org}
    for attr, value in vars(w).items():
        if isinstance(value, Model) and not attr.startswith("other_"):
            objects.setdefault(type(value), value)
    return objects


def _org_a_names(w) -> set[str]:
    """Names of org A's rows that no row of org B shares, and its people's addresses."""
    from django.contrib.auth import get_user_model
    from django.db.models import Model

    def names(other: bool) -> set[str]:
        rows = [v for k, v in vars(w).items() if isinstance(v, Model) and k.startswith("other_") == other]
        return {str(v) for v in rows if not isinstance(v, get_user_model())}

    own = names(False) | {w.org.name, w.org.slug, w.project.name, "sk-acme"}
    own |= {u.email for u in (w.owner, w.member, w.viewer)}
    return {n for n in own - names(True) - {w.other_org.name, w.other_org.slug} if len(n) >= 4}


def test_every_list_route_with_filters_is_walked():
    assert FILTERABLE_LISTS and set(FILTERABLE_LISTS) <= API_LIST


@pytest.mark.parametrize("name", FILTERABLE_LISTS)
def test_outsider_naming_org_as_object_in_a_filter_gets_what_a_missing_id_gets(w, name):
    client = api_client_for(w.outsider)
    objects = _org_a_objects(w)
    for param, model, field in _identifying_filters(_filterset_class(name, w.outsider)):
        assert model in objects, f"{name} ?{param}= names a {model.__name__}: give org A one in the fixture"
        value = getattr(objects[model], field.attname)
        missing = 2**31 - 7 if isinstance(value, int) else f"{value}-missing"
        foreign, absent = client.get(reverse(name), {param: value}), client.get(reverse(name), {param: missing})
        assert (foreign.status_code, foreign.json()) == (absent.status_code, absent.json()), f"?{param}="
        assert foreign.status_code == 200 and foreign.json()["count"] == 0, f"?{param}="


@pytest.mark.parametrize("name", FILTERABLE_LISTS)
def test_browsable_filter_form_lists_nothing_of_org_a(w, name, settings, monkeypatch):
    """The browsable API is on only with DEBUG (tests/core/test_api_inputs.py), and even then its
    filter forms offer no choice of rows: an id is typed, never picked from every tenant's list."""
    import html

    from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
    from rest_framework.views import APIView

    settings.DEBUG = True
    monkeypatch.setattr(APIView, "renderer_classes", [JSONRenderer, BrowsableAPIRenderer])
    response = api_client_for(w.outsider).get(reverse(name), {"format": "api"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    page = html.unescape(response.content.decode())
    assert "Filters" in page  # the filter form is rendered
    leaked = {n for n in _org_a_names(w) if n in page}
    assert leaked == set()
    for param, _, _ in _identifying_filters(_filterset_class(name, w.outsider)):
        assert f'<select name="{param}"' not in page and f'name="{param}" ' in page, f"?{param}="
