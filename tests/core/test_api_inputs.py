"""Bad input on every API route answers a 4xx in the one error shape, never a 500.

The routes come from the URL conf, walked like the tenancy matrix (tests/test_tenancy_matrix.py
fails when a route is missing there); what each operation takes (its JSON body and the body's
integer fields, its query parameters) comes from the OpenAPI schema the API serves. So a new
route, filter or body field is tried without being listed here.
"""

import json
import re
import subprocess
import sys
from functools import cache

import pytest
from django.urls import get_resolver, resolve, reverse

from apps.core.drf import MAX_ID, parse_id
from apps.core.parsers import MAX_JSON_DEPTH, JSONParser
from tests.conftest import api_client_for
from tests.test_tenancy_matrix import API_DETAIL, PUBLIC, _names

API_ROUTES = sorted({n for n in _names(get_resolver().url_patterns) if n.startswith("api:") and n not in PUBLIC})
WRITES = ("post", "put", "patch", "delete")

TOO_DEEP = "[" * 100_000 + "]" * 100_000  # Python's decoder: RecursionError
DEEP_IN_AN_OBJECT = '{"name": ' + "[" * (MAX_JSON_DEPTH + 5) + "]" * (MAX_JSON_DEPTH + 5) + "}"
NOT_OBJECTS = ["[1, 2]", '"text"', "42", "null", "true"]
BAD_BODIES = [TOO_DEEP, DEEP_IN_AN_OBJECT, *NOT_OBJECTS, "{not json"]
BAD_IDS = ["abc", "12345678901234567890", "-1", "0", "1.5", "1e3", "%20", "9" * 40]
BAD_QUERY_VALUES = ["abc", "12345678901234567890", "-1", "", "1.5", "9" * 40]
BAD_INTEGERS = ["abc", 12345678901234567890, -1, 1.5, [1], {"id": 1}, True]


@cache
def _operations() -> dict[tuple[str, str], dict]:
    """(route name, method) -> its operation in the served OpenAPI schema, $refs resolved."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema.get("components", {}).get("schemas", {})
    ops = {}
    for path, methods in schema["paths"].items():
        match = resolve(re.sub(r"\{[^}]+\}", "1", path))
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body and "$ref" in body:
                body = components[body["$ref"].rsplit("/", 1)[-1]]
            ops[(f"{match.namespace}:{match.url_name}", method)] = {**op, "json_body": body}
    return ops


def _methods(url: str) -> list[str]:
    func = resolve(url).func
    if hasattr(func, "actions"):  # a viewset
        return sorted(func.actions)
    view_class = func.view_class
    return sorted(m for m in view_class.http_method_names if m not in ("head", "options") and hasattr(view_class, m))


def _url(w, name: str) -> str:
    return reverse(name, kwargs=API_DETAIL[name](w)) if name in API_DETAIL else reverse(name)


def assert_error_shape(response, context=""):
    assert 400 <= response.status_code < 500, (context, response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), (context, response.content[:300])
    error = response.json()["error"]
    assert set(error) == {"code", "message", "detail"}, context
    assert isinstance(error["code"], str) and isinstance(error["message"], str), context


def assert_not_a_server_error(response, context=""):
    assert response.status_code < 500, (context, response.status_code)
    if response.status_code >= 400:
        assert_error_shape(response, context)


@pytest.fixture
def client(w, monkeypatch):
    from apps.orgs.throttling import PrincipalRateThrottle

    # The walk sends thousands of requests as one principal. Counting them would throttle it, and
    # the counts, kept in the cache, would throttle later tests whose user has the same id.
    monkeypatch.setattr(PrincipalRateThrottle, "allow_request", lambda self, request, view: True)
    # The owner of org A: every write gets past the permission check to the body.
    client = api_client_for(w.owner)
    client.raise_request_exception = False  # a 500 is asserted on, not raised
    return client


def test_every_api_route_is_walked():
    routes = {name for name, _ in _operations()}
    assert set(API_ROUTES) - routes == set(), "a route the schema does not describe is not walked"


@pytest.mark.parametrize("name", API_ROUTES)
def test_bad_json_bodies_answer_the_error_shape(w, client, name):
    url = _url(w, name)
    for method in set(_methods(url)) & {"post", "put", "patch"}:
        takes_json = bool(_operations().get((name, method), {}).get("json_body"))
        for body in BAD_BODIES if takes_json else [TOO_DEEP]:
            response = getattr(client, method)(url, body, content_type="application/json")
            context = f"{method.upper()} {url} {body[:20]!r}"
            if takes_json:
                assert_error_shape(response, context)
            else:  # an action that reads no body ignores it
                assert_not_a_server_error(response, context)


@pytest.mark.parametrize("name", sorted(n for n in API_ROUTES if n in API_DETAIL))
def test_bad_ids_in_urls_answer_the_error_shape(w, client, name):
    kwargs = API_DETAIL[name](w)
    for value in kwargs.values():
        good = reverse(name, kwargs=kwargs)
        for bad in BAD_IDS:
            url = good.replace(f"/{value}/", f"/{bad}/", 1)
            for method in _methods(good):
                response = getattr(client, method)(url, {}, format="json") if method in WRITES else client.get(url)
                assert_error_shape(response, f"{method.upper()} {url}")
                assert response.status_code in (400, 404, 405), f"{method.upper()} {url}"


@pytest.mark.parametrize("name", API_ROUTES)
def test_bad_query_values_answer_the_error_shape(w, client, name):
    url = _url(w, name)
    if "get" not in _methods(url):
        return
    for param in _operations()[(name, "get")].get("parameters", []):
        if param["in"] != "query" or param["name"] == "format":
            continue
        is_id = param["schema"].get("type") == "integer" and param["schema"].get("maximum") == MAX_ID
        for bad in BAD_QUERY_VALUES:
            response = client.get(url, {param["name"]: bad})
            context = f"GET {url}?{param['name']}={bad}"
            assert_not_a_server_error(response, context)
            if is_id and bad:  # an id filter says what is wrong with the value
                assert response.status_code == 400 and param["name"] in response.json()["error"]["detail"], context


@pytest.mark.parametrize("name", API_ROUTES)
def test_bad_ids_in_json_bodies_answer_the_error_shape(w, client, name):
    url = _url(w, name)
    for method in set(_methods(url)) & {"post", "put", "patch"}:
        body = _operations().get((name, method), {}).get("json_body") or {}
        integers = [p for p, s in body.get("properties", {}).items() if s.get("type") == "integer"]
        for field in integers:
            for bad in BAD_INTEGERS:
                response = getattr(client, method)(url, json.dumps({field: bad}), content_type="application/json")
                assert_not_a_server_error(response, f"{method.upper()} {url} {field}={bad!r}")


def test_an_unknown_api_url_answers_the_error_shape(client):
    response = client.get("/api/v1/no-such-collection/")
    assert_error_shape(response)
    assert response.json()["error"]["code"] == "not_found"


def test_an_unknown_page_is_still_the_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# --- the parser and the id reader, at their boundaries ---------------------------------------------


def _parse(text: str):
    import io

    return JSONParser().parse(io.BytesIO(text.encode()), "application/json", {})


def test_json_nested_to_the_limit_is_read():
    text = '{"a": ' + "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1) + "}"
    assert "a" in _parse(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": ' + "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH + "}",
        '{"a": ' + '{"b": ' * MAX_JSON_DEPTH + "1" + "}" * MAX_JSON_DEPTH + "}",
        TOO_DEEP,
        *NOT_OBJECTS,
    ],
)
def test_json_nested_past_the_limit_or_not_an_object_is_a_parse_error(text):
    from rest_framework.exceptions import ParseError

    with pytest.raises(ParseError):
        _parse(text)


@pytest.mark.parametrize("value, expected", [(1, 1), ("42", 42), (" 7 ", 7), (MAX_ID, MAX_ID)])
def test_parse_id_reads_whole_numbers(value, expected):
    assert parse_id(value, "template") == expected


@pytest.mark.parametrize("value", [0, -1, MAX_ID + 1, "abc", "1.5", "²", 1.0, True, None, [1], {"id": 1}])
def test_parse_id_refuses_anything_else_naming_the_field(value):
    from rest_framework.exceptions import ValidationError

    with pytest.raises(ValidationError) as raised:
        parse_id(value, "template")
    assert "template" in raised.value.detail


# --- renderers -----------------------------------------------------------------------------------


def test_the_browsable_api_is_off_outside_debug(client):
    response = client.get(reverse("api:project-list"), {"format": "api"})
    assert_error_shape(response)
    assert response.status_code == 404
    response = client.get(reverse("api:project-list"), HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("debug, browsable", [("false", False), ("true", True)])
def test_settings_offer_the_browsable_api_only_with_debug(debug, browsable):
    code = (
        "import django; django.setup(); from rest_framework.settings import api_settings; "
        "print(' '.join(c.__name__ for c in api_settings.DEFAULT_RENDERER_CLASSES))"
    )
    import os

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "readiness.settings", "DEBUG": debug}
    names = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert names.stdout.split() == (["JSONRenderer", "BrowsableAPIRenderer"] if browsable else ["JSONRenderer"])
