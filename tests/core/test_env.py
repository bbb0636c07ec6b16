import re

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.core.env import env_bool, env_int, env_secret_file, env_url


@pytest.mark.parametrize("raw,expected", [("true", True), ("1", True), ("ON", True), ("false", False), ("0", False)])
def test_env_bool_reads_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("X_FLAG", raw)
    assert env_bool("X_FLAG") is expected


def test_env_bool_refuses_a_typo(monkeypatch):
    monkeypatch.setenv("X_FLAG", "ture")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG must be a boolean"):
        env_bool("X_FLAG")


def test_env_int_refuses_text_and_values_below_the_minimum(monkeypatch):
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ImproperlyConfigured, match="integer"):
        env_int("X_NUM", 1)
    monkeypatch.setenv("X_NUM", "0")
    with pytest.raises(ImproperlyConfigured, match=">= 1"):
        env_int("X_NUM", 5, minimum=1)
    monkeypatch.delenv("X_NUM")
    assert env_int("X_NUM", 5) == 5


def test_env_url_refuses_an_unexpected_scheme(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://x/y")
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        env_url("DATABASE_URL", schemes=("postgres", "sqlite"))


def test_secret_file_is_generated_once_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv("X_SECRET", raising=False)
    path = tmp_path / "secret"
    first = env_secret_file("X_SECRET", path, generate=lambda: "generated-1")
    second = env_secret_file("X_SECRET", path, generate=lambda: "generated-2")
    assert first == second == "generated-1"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    monkeypatch.setenv("X_SECRET", "from-env")
    assert env_secret_file("X_SECRET", path, generate=lambda: "unused") == "from-env"


def test_env_example_documents_every_variable_the_settings_read():
    source = (settings.BASE_DIR / "readiness" / "settings.py").read_text()
    read = set(re.findall(r'env_\w+\(\s*"([A-Z_]+)"', source))
    example = (settings.BASE_DIR / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z_]+)=", example, flags=re.M))
    assert read, "the regex found no env reads: the test would prove nothing"
    assert read - documented == set()


@pytest.mark.parametrize(
    "url, expected",
    [
        ("redis://redis:6379/0", "redis://redis:6379/1"),
        ("redis://:pw@h:6379/7", "redis://:pw@h:6379/8"),
        ("rediss://h:6380", "rediss://h:6380/1"),
        ("redis://h/", "redis://h/1"),
        ("unix:///run/redis.sock?db=0", "unix:///run/redis.sock?db=0"),
    ],
)
def test_the_cache_goes_on_the_brokers_neighbour_database(url, expected):
    from apps.core.env import redis_neighbour_db

    assert redis_neighbour_db(url) == expected
