"""Error pages: the site's own 404, 403 and 500, with its navigation, in production and under
DEBUG (`make run`), where Django would otherwise list every URL pattern of the site."""

import pytest
from django.test import Client
from django.urls import path

from readiness.urls import urlpatterns as site_patterns


def boom(request):
    raise RuntimeError("the database went away")


urlpatterns = [*site_patterns, path("boom/", boom)]
handler404 = "apps.core.drf.api_page_not_found"
handler500 = "apps.core.views.server_error"


@pytest.fixture
def debug(settings):
    settings.DEBUG = True


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_missing_page_under_debug_answers_the_sites_404_without_the_url_list(debug, world):
    response = logged_in(world.member).get("/no/such/page/")
    assert response.status_code == 404
    text = response.content.decode()
    assert 'data-testid="error-404"' in text
    assert "URLconf" not in text and "api/v1/" not in text  # Django's technical page lists the patterns
    # The navigation stays: the brand, the menu and the person's organizations.
    assert 'class="topbar"' in text and "/o/acme/" in text and "Log out" in text


def test_a_missing_object_under_debug_answers_the_sites_404(debug, world):
    response = logged_in(world.member).get("/o/acme/projects/not-a-project/")
    assert response.status_code == 404
    text = response.content.decode()
    assert 'data-testid="error-404"' in text and "Traceback" not in text and "Http404" not in text


def test_an_outsider_gets_the_sites_404_for_another_orgs_project_under_debug(debug, world):
    response = logged_in(world.outsider).get(f"/o/acme/projects/{world.project.slug}/")
    assert response.status_code == 404
    text = response.content.decode()
    assert 'data-testid="error-404"' in text and world.project.name not in text


def test_a_url_missing_only_its_slash_still_redirects_under_debug(debug, world):
    response = logged_in(world.member).get("/o/acme")
    assert response.status_code == 301 and response["Location"] == "/o/acme/"


def test_a_missing_api_url_under_debug_keeps_the_api_error_shape(debug, world):
    response = logged_in(world.member).get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_technical_404_comes_back_when_asked_for(debug, settings, world):
    settings.READINESS_TECHNICAL_404 = True
    response = logged_in(world.member).get("/no/such/page/")
    assert response.status_code == 404
    assert "URLconf" in response.content.decode()


def test_a_missing_page_in_production_answers_the_sites_404(world):
    response = logged_in(world.member).get("/no/such/page/")
    assert response.status_code == 404 and 'data-testid="error-404"' in response.content.decode()


def test_a_viewer_refused_an_action_gets_the_403_page_with_the_reason_and_the_navigation(world):
    response = logged_in(world.viewer).get(f"/o/acme/projects/{world.project.slug}/edit/")
    assert response.status_code == 403
    text = response.content.decode()
    assert 'data-testid="error-403"' in text and "read-only" in text and 'class="topbar"' in text


def test_a_server_error_answers_the_sites_500_page_with_the_navigation(world, settings):
    settings.ROOT_URLCONF = __name__
    client = logged_in(world.member)
    client.raise_request_exception = False
    response = client.get("/boom/")
    assert response.status_code == 500
    text = response.content.decode()
    assert 'data-testid="error-500"' in text and "/o/acme/" in text
    assert "the database went away" not in text
