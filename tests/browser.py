"""Headless Chromium for the page tests: Debian's chromium driven by Playwright, no browser download.

`tests/conftest.py` makes the fixtures here available to every test:
- `browser`: a function that opens a page at a viewport (DESKTOP by default, PHONE for 390×844);
- `page`: one desktop page.
Every page they open fails its test if the Content-Security-Policy refused anything (an inline
script or handler left in a template) or a script threw, and a failing test leaves a screenshot of
each of its pages under READINESS_VAR_DIR/screenshots/, named after the test.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def screenshot_dir():
    from django.conf import settings

    path = settings.VAR_DIR / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser(request):
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "Debian's chromium is required: apt-get install chromium"
    # Playwright's sync API runs an event loop in this thread; the test body's ORM calls stay
    # synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    failed_before = request.session.testsfailed
    pages, refused = [], []

    def open_page(viewport=DESKTOP):
        context = chromium.new_context(viewport=viewport)
        page = context.new_page()
        page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda e: refused.append(f"script error: {e}"))
        pages.append(page)
        return page

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield open_page
        # The call phase is reported before teardown: a failure has been counted by now.
        if request.session.testsfailed > failed_before:
            name = re.sub(r"\W+", "-", request.node.name)[:120]
            for n, page in enumerate(pages):
                page.screenshot(path=str(screenshot_dir() / f"failed-{name}-{n}.png"), full_page=True)
        chromium.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    assert refused == []


@pytest.fixture
def page(browser):
    return browser()


def log_in(page, base_url: str, username: str, password: str | None = None) -> None:
    """Sign in through the login form (test users' passwords are "pw-<name>")."""
    page.context.clear_cookies()
    page.goto(base_url + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password or f"pw-{username}")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/login/" not in page.url, f"{username} could not sign in"


def settled(page, timeout_s: float = 60) -> None:
    """Wait until a readiness page shows no queued re-evaluation: the page reloads itself while one
    is queued, and the decision worker's task ends it."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        # Read a whole document: one still loading may have parsed its head's refresh but not yet
        # the body's notice, and would then reload under the test's next step.
        page.wait_for_load_state("load")
        if not page.locator("[data-testid=refreshing], meta[http-equiv=refresh]").count():
            return
        assert time.monotonic() < deadline, "the re-evaluation after the change never ran"
        page.wait_for_timeout(500)
