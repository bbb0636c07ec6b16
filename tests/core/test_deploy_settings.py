"""Start-up in production (DEBUG off): keys only from the environment and checked, HTTPS settings
from the environment, and `manage.py check --deploy` clean. Each case starts a fresh Python with
its own environment, since the settings are read once per process."""

import os
import secrets
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings

ROOT = settings.BASE_DIR
SHOW = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(len(s.SECRET_KEY), len(s.FIELD_ENCRYPTION_KEYS), s.SECURE_PROXY_SSL_HEADER)"
)


def https_env() -> dict[str, str]:
    return {
        "SECRET_KEY": secrets.token_urlsafe(60),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "readiness.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://readiness.example.com",
        "SECURE_SSL_REDIRECT": "true",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
        "SECURE_HSTS_PRELOAD": "true",
        "SESSION_COOKIE_SECURE": "true",
        "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto: https",
    }


def run(tmp_path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """A fresh process with only `env` (plus PATH): nothing inherited from the test run, which is
    itself the embedded default (READINESS_EMBEDDED) and may point at PostgreSQL."""
    base = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "readiness.settings",
        "READINESS_VAR_DIR": str(tmp_path / "var"),
    }
    cmd = [sys.executable, *(args or ("-c", SHOW))]
    return subprocess.run(cmd, cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120)


def test_production_refuses_to_start_without_secret_key(tmp_path):
    env = https_env()
    del env["SECRET_KEY"]
    done = run(tmp_path, {**env, "DEBUG": "false"})
    assert done.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set" in done.stderr
    assert not (tmp_path / "var/secret_key").exists()  # nothing generated


@pytest.mark.parametrize("blank", [None, "", "  "])
def test_production_refuses_to_start_without_field_encryption_key(tmp_path, blank):
    env = https_env()
    del env["FIELD_ENCRYPTION_KEY"]
    if blank is not None:
        env["FIELD_ENCRYPTION_KEY"] = blank
    done = run(tmp_path, env)  # DEBUG unset: off
    assert done.returncode != 0
    assert "ImproperlyConfigured: FIELD_ENCRYPTION_KEY must be set" in done.stderr
    assert not (tmp_path / "var/field_encryption_key").exists()


# Not base64; 30 bytes (a key cut short); 33 bytes.
@pytest.mark.parametrize("bad", ["not-a-key!", "x" * 40, "x" * 44])
def test_a_bad_fernet_key_stops_start_up_by_name_without_showing_it(tmp_path, bad):
    done = run(tmp_path, {**https_env(), "FIELD_ENCRYPTION_KEY": bad})
    assert done.returncode != 0
    assert "ImproperlyConfigured: FIELD_ENCRYPTION_KEY is not a valid Fernet key" in done.stderr
    assert bad not in done.stderr


def test_a_bad_rotation_key_is_named_by_its_position(tmp_path):
    keys = f"{Fernet.generate_key().decode()},oops"
    done = run(tmp_path, {**https_env(), "FIELD_ENCRYPTION_KEYS": keys})
    assert done.returncode != 0
    assert "key 2 of FIELD_ENCRYPTION_KEYS is not a valid Fernet key" in done.stderr


def test_a_bad_key_is_refused_in_debug_too(tmp_path):
    done = run(tmp_path, {"DEBUG": "true", "FIELD_ENCRYPTION_KEY": "not-a-key"})
    assert done.returncode != 0 and "FIELD_ENCRYPTION_KEY is not a valid Fernet key" in done.stderr


def test_production_starts_with_both_keys_and_writes_no_key_files(tmp_path):
    done = run(tmp_path, https_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["80", "1", "('HTTP_X_FORWARDED_PROTO',", "'https')"]
    assert not (tmp_path / "var/secret_key").exists() and not (tmp_path / "var/field_encryption_key").exists()


@pytest.mark.parametrize("mode", [{"DEBUG": "true"}, {"READINESS_EMBEDDED": "true"}])
def test_the_embedded_default_keeps_generated_keys_in_its_var_dir(tmp_path, mode):
    first = run(tmp_path, mode)
    second = run(tmp_path, mode)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    secret_key = (tmp_path / "var/secret_key").read_text()
    Fernet((tmp_path / "var/field_encryption_key").read_text())  # a valid key
    assert len(secret_key) >= 50 and first.stdout == second.stdout  # the same keys, read back


def test_a_malformed_proxy_ssl_header_stops_start_up(tmp_path):
    done = run(tmp_path, {**https_env(), "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"})
    assert done.returncode != 0 and "SECURE_PROXY_SSL_HEADER must look like" in done.stderr


def test_check_deploy_is_clean_with_the_production_environment(tmp_path):
    done = run(tmp_path, {**https_env(), "DEBUG": "false"}, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_check_deploy_names_each_https_setting_left_out(tmp_path):
    env = {k: v for k, v in https_env().items() if k.startswith(("SECRET", "FIELD", "ALLOWED"))}
    done = run(tmp_path, env, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in done.stderr
