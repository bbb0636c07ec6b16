"""Browser-facing security: a Content-Security-Policy on every page that allows no inline script,
templates that need none, and pages showing a secret once that no cache may keep."""

import re
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

TEMPLATES = Path(settings.BASE_DIR) / "templates"
SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
HANDLER = re.compile(r"<[a-z][^>]*?\son[a-z]+\s*=", re.IGNORECASE | re.DOTALL)
SCRIPT_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)


@pytest.fixture(autouse=True)
def _own_cache(settings):
    # The API's rate limit counts in the cache: requests of earlier tests must not spend this one's.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"headers-{uuid.uuid4()}"}
    }


def directives(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in policy.split(";") if part.strip()}


def assert_strict_policy(response, url):
    assert "Content-Security-Policy" in response.headers, url
    d = directives(response)
    assert d["script-src"] == "script-src 'self'", url  # no 'unsafe-inline', no 'unsafe-eval'
    assert d["object-src"] == "object-src 'none'", url
    assert d["base-uri"] == "base-uri 'none'", url
    assert d["frame-ancestors"] == "frame-ancestors 'none'", url
    assert "'unsafe-inline'" not in d["default-src"], url


def inline_scripts(html: str) -> list[str]:
    """Script elements that would run code written in the page: no src, or a body. JSON data
    blocks (json_script) are data, not code."""
    found = []
    for attrs, body in SCRIPT.findall(html):
        if re.search(r"""type\s*=\s*["']application/json["']""", attrs, re.IGNORECASE):
            continue
        if body.strip() or not re.search(r"\bsrc\s*=", attrs, re.IGNORECASE):
            found.append(f"<script{attrs}>{body[:60]}")
    return found


def test_no_template_holds_inline_script_handlers_or_script_urls():
    offenders = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text()
        name = path.relative_to(TEMPLATES)
        offenders += [f"{name}: {s}" for s in inline_scripts(text)]
        offenders += [f"{name}: {m.group(0)[-40:]}" for m in HANDLER.finditer(text)]
        offenders += [f"{name}: {m.group(0)}" for m in SCRIPT_URL.finditer(text)]
    assert offenders == []


def test_the_template_check_catches_what_it_is_for():
    assert inline_scripts("<script>alert(1)</script>")
    assert inline_scripts('<script type="module">import "x"</script>')
    assert not inline_scripts('<script src="/static/js/app.js" defer></script>')
    assert not inline_scripts('<script id="fig" type="application/json">{"a": 1}</script>')
    assert HANDLER.search('<form method="post"\n  onsubmit="return confirm(1)">')
    assert HANDLER.search("<button type=button onclick=print()>")
    assert not HANDLER.search('<form data-confirm="Delete?" class="inline">')
    assert SCRIPT_URL.search('<a href="javascript:alert(1)">')


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("dashboard", lambda w: {"org_slug": w.org.slug}),
        ("project-detail", lambda w: {"org_slug": w.org.slug, "slug": w.project.slug}),
        ("project-readiness", lambda w: {"org_slug": w.org.slug, "slug": w.project.slug}),
        ("project-cost", lambda w: {"org_slug": w.org.slug, "slug": w.project.slug}),
        ("tokens", lambda w: {"org_slug": w.org.slug}),
        ("password_change", lambda w: {}),
        ("api:docs", lambda w: {}),
        ("api:project-list", lambda w: {}),
    ],
)
def test_every_page_sends_a_strict_content_security_policy(client, world, name, kwargs):
    client.force_login(world.owner)
    url = reverse(name, kwargs=kwargs(world))
    response = client.get(url)
    assert response.status_code == 200, url
    assert_strict_policy(response, url)
    if response["Content-Type"].startswith("text/html"):
        assert inline_scripts(response.content.decode()) == [], url


@pytest.mark.parametrize("url", ["/login/", "/account/password-reset/", "/admin/login/", "/no/such/page/", "/healthz"])
def test_anonymous_pages_and_errors_send_the_policy_too(client, db, url):
    response = client.get(url)
    assert_strict_policy(response, url)
    if response["Content-Type"].startswith("text/html"):
        assert inline_scripts(response.content.decode()) == [], url


def test_swagger_ui_starts_from_its_own_script(client, db):
    page = client.get(reverse("api:docs"))
    [init] = re.findall(r'<script src="([^"]*script=[^"]*)"', page.content.decode())
    script = client.get(init.replace("&amp;", "&"))
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content


def test_charts_travel_as_json_data_read_by_the_static_script(client, world):
    """The figure is a json_script block beside an element naming it; app.js draws it."""
    from django.template.loader import render_to_string

    figures = {"ttft": {"data": [], "layout": {"title": "</script>"}}}
    html = render_to_string("probes/_figures.html", {"figures": figures})
    assert '<div class="chart card" id="fig-ttft" data-plotly="fig-ttft-data"></div>' in html
    assert '<script id="fig-ttft-data" type="application/json">' in html
    assert html.count("</script>") == 1  # json_script escapes the title's, which would close the element
    app_js = (Path(settings.BASE_DIR) / "static/js/app.js").read_text()
    assert "data-plotly" in app_js and "JSON.parse" in app_js and "data-confirm" in app_js


@pytest.mark.parametrize("name", ["tokens", "my-tokens"])
def test_token_pages_are_never_cached(client, world, name):
    client.force_login(world.owner)
    url = reverse(name, kwargs={"org_slug": world.org.slug})
    shown = client.get(url)
    created = client.post(url, {"name": "ci", "scope": "read"})
    assert created.status_code == 200 and b"rdy_" in created.content  # the secret, shown once
    for response in (shown, created):
        assert "no-store" in response.headers["Cache-Control"]
        assert "private" in response.headers["Cache-Control"]
