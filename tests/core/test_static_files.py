"""Static files: a favicon at the root, and (after collectstatic) hashed names cached for good."""

import re

from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from django.http import HttpResponse
from django.test import RequestFactory
from whitenoise.middleware import WhiteNoiseMiddleware

MANIFEST = "whitenoise.storage.CompressedManifestStaticFilesStorage"


def test_favicon_ico_is_served_at_the_root_and_every_page_links_the_svg_icon(client, world):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and b"".join(icon.streaming_content)[:4] == b"\x00\x00\x01\x00"
    client.force_login(world.owner)
    page = client.get("/o/acme/").content.decode()
    assert 'rel="icon"' in page and "favicon.svg" in page


def test_collected_static_names_carry_a_hash_and_are_served_immutable_for_a_year_or_more(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": MANIFEST}}
    # Only our own files: the admin's and the API docs' would triple the time to no purpose.
    call_command(
        "collectstatic",
        "--noinput",
        "-v",
        "0",
        "-i",
        "admin",
        "-i",
        "rest_framework",
        "-i",
        "drf_spectacular_sidecar",
        "-i",
        "django_celery_beat",
    )
    url = staticfiles_storage.url("js/plotly.min.js")
    assert url != "/static/js/plotly.min.js" and url.startswith("/static/js/plotly.min.")
    served = WhiteNoiseMiddleware(get_response=lambda request: HttpResponse(status=404))(RequestFactory().get(url))
    assert served.status_code == 200 and "immutable" in served["Cache-Control"]
    max_age = int(served["Cache-Control"].split("max-age=")[1].split(",")[0])
    assert max_age >= 365 * 24 * 3600


# The partial bundle's trace types (its README), and the shape and axis types a figure may name.
CARTESIAN = {
    "bar",
    "box",
    "contour",
    "heatmap",
    "histogram",
    "histogram2d",
    "histogram2dcontour",
    "image",
    "pie",
    "scatter",
    "scatterternary",
    "violin",
}
NOT_TRACES = {"line", "rect", "circle", "path", "category", "linear", "log", "date"}


def test_the_plotly_bundle_is_the_cartesian_one_and_draws_every_trace_type_our_figures_use(settings):
    head = (settings.BASE_DIR / "static/js/plotly.min.js").read_text()[:200]
    assert "cartesian" in head and "v3." in head
    builders = [*(settings.BASE_DIR / "apps").glob("*/charts.py"), *(settings.BASE_DIR / "apps").glob("*/*_charts.py")]
    used = {t for path in builders for t in re.findall(r'"type": "(\w+)"', path.read_text())}
    assert "bar" in used and "scatter" in used
    assert used - NOT_TRACES <= CARTESIAN
