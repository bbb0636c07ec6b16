from django.conf import settings
from django.db import connection
from django.http import Http404, HttpResponseServerError, JsonResponse
from django.template import loader
from django.urls import Resolver404, get_resolver, resolve
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from readiness.celery import app as celery_app


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "down"
        return f"{type(exc).__name__}: {exc}"
    return None


def _check_broker() -> str | None:
    try:
        # The URL is read from settings each time, so a changed setting is what gets checked.
        with celery_app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@never_cache
@require_GET
def healthz(request):
    """200 when the database and the broker answer, 503 (with which one failed) otherwise."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    ok = all(v is None for v in checks.values())
    body = {"status": "ok" if ok else "fail", "checks": {k: v or "ok" for k, v in checks.items()}}
    return JsonResponse(body, status=200 if ok else 503)


# --- error pages ---------------------------------------------------------------------------------


def server_error(request):
    """`handler500`: the site's own page, with the navigation when it can be drawn.

    The context processors read the database, which may be what failed: if the full page
    cannot be rendered, the same template is rendered without them (no navigation)."""
    template = loader.get_template("500.html")
    try:
        body = template.render({}, request)
    except Exception:  # the page must not fail the way the request did
        body = template.render({})
    return HttpResponseServerError(body)


class NotFoundPageMiddleware:
    """With DEBUG on (`make run`), Django answers a missing page with its technical 404, which lists
    every URL pattern of the site. This answers the site's own 404 page instead (the API keeps its
    error shape), as production does; READINESS_TECHNICAL_404=true brings Django's page back.

    Listed last in MIDDLEWARE, so the page knows the user and CommonMiddleware still redirects
    a URL missing only its trailing slash."""

    def __init__(self, get_response):
        self.get_response = get_response

    @staticmethod
    def active() -> bool:
        return settings.DEBUG and not getattr(settings, "READINESS_TECHNICAL_404", False)

    def not_found(self, request, exception):
        handler = get_resolver(getattr(request, "urlconf", None)).resolve_error_handler(404)
        return handler(request, exception)

    def __call__(self, request):
        if self.active():
            try:
                resolve(request.path_info, getattr(request, "urlconf", None))
            except Resolver404 as exc:
                return self.not_found(request, exc)
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, Http404) and self.active():
            return self.not_found(request, exception)
        return None
