"""Headless Chromium (Debian's package) through Playwright: what a new user does first."""

import os
import shutil

import pytest

from apps.orgs import services as org_services
from tests.conftest import make_user

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture
def page(tmp_path):
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "Debian's chromium is required: apt-get install chromium"
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls from the
    # test body are still synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context()
        yield context.new_page()
        context.close()
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def test_new_user_logs_in_creates_a_project_and_an_endpoint_and_tests_it(
    page, live_server, simulator, transactional_db
):
    user = make_user("dana")
    org_services.organization_create(name="Initech", slug="initech", owner=user)

    page.goto(live_server.url + "/")
    assert "/login/" in page.url
    page.fill("#id_username", "dana")
    page.fill("#id_password", "pw-dana")
    page.click("button[type=submit]")
    page.wait_for_url("**/o/initech/")

    page.click("text=New project")
    page.fill("#id_name", "Claims Assistant")
    page.select_option("#id_stage", "pilot")
    page.fill("#id_monthly_budget_usd", "2500")
    page.click("button:has-text('Create project')")
    page.wait_for_url("**/o/initech/projects/claims-assistant/")
    assert page.is_visible("text=Claims Assistant")

    page.click("text=Add endpoint")
    page.fill("#id_name", "vllm-l4")
    page.fill("#id_base_url", "not a url")
    page.fill("#id_model_name", "sim-llama-3-8b")
    page.fill("#id_gpu_type", "NVIDIA L4")
    page.fill("#id_gpus_per_replica", "1")
    page.fill("#id_gpu_hourly_usd", "0.8")
    page.fill("#id_api_key", "sk-browser-secret")
    page.click("button:has-text('Add endpoint')")
    # A bad URL is refused on the form, with the other fields kept.
    assert page.is_visible("text=URL must start with http:// or https://")
    assert page.input_value("#id_model_name") == "sim-llama-3-8b"
    page.fill("#id_base_url", simulator.base_url)
    page.fill("#id_api_key", "sk-browser-secret")
    page.click("button:has-text('Add endpoint')")
    page.wait_for_url("**/o/initech/projects/claims-assistant/")
    rows = page.inner_text("[data-testid=endpoint-list]")
    assert "vllm-l4" in rows and simulator.base_url in rows
    assert "sk-browser-secret" not in page.content()

    page.click("button:has-text('Test connection')")
    page.wait_for_selector(".msg.success")
    assert "'sim-llama-3-8b' is served" in page.inner_text(".messages")

    page.goto(live_server.url + "/o/initech/")
    assert "Claims Assistant" in page.inner_text("[data-testid=project-list]")
    page.screenshot(path=str(live_server_screenshot_dir() / "dashboard.png"), full_page=True)


def live_server_screenshot_dir():
    from django.conf import settings

    path = settings.VAR_DIR / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
