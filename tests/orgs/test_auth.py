"""Log-in throttling, password rules, password change and reset by email."""

import re
import uuid

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse

from apps.orgs import services
from apps.orgs.tasks import password_reset_mail_task
from tests.conftest import make_user

GOOD_NEW_PASSWORD = "plum-Harbour-lantern-42"


@pytest.fixture(autouse=True)
def _own_cache(settings):
    # Failure counts live in the cache; each test gets an empty one of its own.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": f"auth-{uuid.uuid4()}"}
    }


def log_in(client, username, password, address="203.0.113.7", **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address, **extra)


def errors(response) -> tuple[int, str]:
    box = re.search(r'<div class="errorlist-box">(.*?)</div>', response.content.decode(), re.S)
    return response.status_code, box.group(1) if box else ""


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


# --- throttling ----------------------------------------------------------------------------------


def test_five_failures_lock_the_username_even_for_the_right_password(client, db):
    make_user("alice")
    for _ in range(5):
        response = log_in(client, "alice", "wrong")
        assert response.status_code == 200 and b"Please enter a correct username and password" in response.content
    locked = log_in(client, "alice", "pw-alice", address="198.51.100.9")  # another address: still locked
    assert locked.status_code == 429
    assert b"Too many failed log-ins" in locked.content and b"Try again in 15 minutes" in locked.content
    assert not logged_in(client)


def test_the_lock_ends_when_the_window_has_passed_since_the_last_failure(client, db):
    make_user("alice")
    with time_machine.travel("2026-03-01 09:00Z", tick=False) as clock:
        for _ in range(5):
            log_in(client, "alice", "wrong")
        clock.shift(14 * 60)
        assert log_in(client, "alice", "pw-alice").status_code == 429
        clock.shift(61)
        assert log_in(client, "alice", "pw-alice").status_code == 302 and logged_in(client)


def test_an_unknown_username_is_locked_the_same_way(client, db):
    make_user("alice")
    made_up = [errors(log_in(client, "nobody", "wrong")) for _ in range(5)]
    known = [errors(log_in(client, "alice", "wrong", address="198.51.100.1")) for _ in range(5)]
    assert made_up == known  # nothing tells an existing name from a made-up one
    assert log_in(client, "nobody", "wrong").status_code == log_in(client, "alice", "x").status_code == 429


def test_one_address_guessing_many_usernames_is_locked(client, db, settings):
    make_user("bob")
    settings.READINESS_LOGIN_MAX_FAILURES_PER_ADDRESS = 20
    for i in range(20):
        log_in(client, f"user{i}", "wrong")
    assert log_in(client, "bob", "pw-bob").status_code == 429
    assert log_in(client, "bob", "pw-bob", address="198.51.100.20").status_code == 302  # bob, elsewhere


def test_a_successful_log_in_clears_the_username_count(client, db):
    make_user("alice")
    for _ in range(4):
        log_in(client, "alice", "wrong")
    assert log_in(client, "alice", "pw-alice").status_code == 302
    client.logout()
    for _ in range(4):
        log_in(client, "alice", "wrong")
    assert log_in(client, "alice", "pw-alice").status_code == 302


def test_a_post_without_a_password_neither_counts_nor_clears(client, db):
    make_user("alice")
    for _ in range(4):
        log_in(client, "alice", "wrong")
    assert log_in(client, "alice", "").status_code == 200  # a missing field: nothing checked
    log_in(client, "alice", "wrong")
    assert log_in(client, "alice", "pw-alice").status_code == 429


def test_behind_a_proxy_the_address_it_saw_is_counted(client, db, settings):
    settings.READINESS_NUM_PROXIES = 1
    settings.READINESS_LOGIN_MAX_FAILURES_PER_ADDRESS = 3
    make_user("bob")
    for i in range(3):  # the client claims a different address each time; the proxy's entry is kept
        log_in(client, f"u{i}", "wrong", address="10.0.0.2", HTTP_X_FORWARDED_FOR=f"1.2.3.{i}, 203.0.113.50")
    assert log_in(client, "bob", "pw-bob", address="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.50").status_code == 429
    ok = log_in(client, "bob", "pw-bob", address="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.51")
    assert ok.status_code == 302  # another client behind the same proxy is not locked out


def test_the_admin_log_in_shares_the_count(client, db):
    admin = make_user("root")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    for _ in range(3):
        log_in(client, "root", "wrong")
    for _ in range(2):
        client.post("/admin/login/", {"username": "root", "password": "wrong"}, REMOTE_ADDR="203.0.113.7")
    locked = client.post(
        "/admin/login/?next=/admin/", {"username": "root", "password": "pw-root"}, REMOTE_ADDR="203.0.113.7"
    )
    assert b"Too many failed log-ins" in locked.content and not logged_in(client)
    assert log_in(client, "root", "pw-root").status_code == 429


# --- password rules --------------------------------------------------------------------------------


@pytest.mark.parametrize("weak", ["password", "12345678", "short1!", "alice-alice"])
def test_weak_passwords_are_refused(db, weak):
    user = get_user_model()(username="alice-alice", email="alice@x.test")
    with pytest.raises(ValidationError):
        validate_password(weak, user)
    validate_password(GOOD_NEW_PASSWORD, user)


# --- password change -------------------------------------------------------------------------------


def test_anonymous_is_sent_to_log_in_from_password_change(client, db):
    response = client.get(reverse("password_change"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_user_changes_their_password(client, db):
    user = make_user("alice")
    client.force_login(user)
    page = client.get(reverse("password_change"))
    assert page.status_code == 200 and b"Change password" in page.content
    assert b'href="/account/password/"' in client.get(reverse("org-create")).content  # linked from every page
    form = {"old_password": "pw-alice", "new_password1": "password", "new_password2": "password"}
    refused = client.post(reverse("password_change"), form)
    assert refused.status_code == 200 and b"This password is too common" in refused.content
    wrong_old = client.post(
        reverse("password_change"),
        {**form, "old_password": "nope", "new_password1": GOOD_NEW_PASSWORD, "new_password2": GOOD_NEW_PASSWORD},
    )
    assert wrong_old.status_code == 200 and b"old password was entered incorrectly" in wrong_old.content
    done = client.post(
        reverse("password_change"),
        {"old_password": "pw-alice", "new_password1": GOOD_NEW_PASSWORD, "new_password2": GOOD_NEW_PASSWORD},
    )
    assert done.status_code == 302 and done["Location"] == reverse("password_change_done")
    assert client.get(reverse("password_change_done")).status_code == 200  # still logged in
    user.refresh_from_db()
    assert user.check_password(GOOD_NEW_PASSWORD)


# --- password reset --------------------------------------------------------------------------------


def test_the_reset_answer_is_the_same_whether_or_not_an_account_has_the_address(
    client, db, mailoutbox, django_capture_on_commit_callbacks
):
    make_user("alice")
    url = reverse("password_reset")
    with django_capture_on_commit_callbacks() as known_queued:
        known = client.post(url, {"email": "alice@x.test"})
    with django_capture_on_commit_callbacks() as unknown_queued:
        unknown = client.post(url, {"email": "mallory@x.test"})
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert known["Location"] == reverse("password_reset_done")
    # The request itself looks nothing up and sends nothing: it queues one task either way.
    assert len(known_queued) == len(unknown_queued) == 1 and mailoutbox == []
    sent = client.get(reverse("password_reset_done")).content
    assert b"If an account has this address" in sent
    assert b"alice" not in sent and b"mallory" not in sent
    assert password_reset_mail_task.run("mallory@x.test") is None and mailoutbox == []
    password_reset_mail_task.run("alice@x.test")
    assert [m.to for m in mailoutbox] == [["alice@x.test"]]


def test_the_reset_mail_names_no_other_account_and_links_to_the_base_url(client, db, mailoutbox, settings):
    settings.READINESS_BASE_URL = "https://readiness.example.com/"
    settings.ALLOWED_HOSTS = ["*"]  # even where any Host is let in, the link is the configured one
    make_user("alice")
    make_user("alice2")  # a different address: not in alice's mail
    assert services.password_reset_mail_send(email="alice@x.test") == 1
    [mail] = mailoutbox
    assert "alice2" not in mail.body and "evil.example" not in mail.body
    assert re.search(r"^https://readiness\.example\.com/account/password-reset/[^/\s]+/[^/\s]+/$", mail.body, re.M)


def test_a_user_resets_their_password_by_email(client, db, mailoutbox):
    user = make_user("alice")
    login_page = client.get(reverse("login")).content
    assert b'href="/account/password-reset/"' in login_page
    client.post(reverse("password_reset"), {"email": "ALICE@x.test"})
    password_reset_mail_task.run("ALICE@x.test")  # what the queued task does
    link = re.search(r"https?://\S+/account/password-reset/\S+/", mailoutbox[0].body).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]
    form_page = client.get("/" + path, follow=True)
    assert form_page.status_code == 200 and b"Choose a new password" in form_page.content
    set_url = form_page.redirect_chain[-1][0]
    weak = client.post(set_url, {"new_password1": "password", "new_password2": "password"})
    assert b"This password is too common" in weak.content
    done = client.post(set_url, {"new_password1": GOOD_NEW_PASSWORD, "new_password2": GOOD_NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")
    user.refresh_from_db()
    assert user.check_password(GOOD_NEW_PASSWORD)
    again = client.get("/" + path, follow=True)
    assert b"This link is not valid" in again.content  # a link works once
