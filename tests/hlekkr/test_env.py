"""Settings helpers fail loudly on nonsense; production refuses to start without its secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from hlekkr.env import env_bool, env_float, env_int, env_list, env_networks, env_secret, parse_database_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("raw", ["maybe", "2", "yes please"])
def test_env_bool_rejects_nonsense(monkeypatch, raw):
    monkeypatch.setenv("X_FLAG", raw)
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        env_bool("X_FLAG")


def test_env_bool_reads_the_usual_spellings(monkeypatch):
    for raw, expected in [("true", True), ("1", True), ("ON", True), ("false", False), ("0", False)]:
        monkeypatch.setenv("X_FLAG", raw)
        assert env_bool("X_FLAG") is expected


def test_env_int_rejects_words_and_out_of_range(monkeypatch):
    monkeypatch.setenv("X_N", "ten")
    with pytest.raises(ImproperlyConfigured):
        env_int("X_N", 1)
    monkeypatch.setenv("X_N", "-5")
    with pytest.raises(ImproperlyConfigured, match=">= 0"):
        env_int("X_N", 1, minimum=0)
    monkeypatch.setenv("X_N", "7")
    assert env_int("X_N", 1) == 7


def test_env_float_and_list(monkeypatch):
    monkeypatch.setenv("X_F", "abc")
    with pytest.raises(ImproperlyConfigured):
        env_float("X_F", 1.0)
    for raw in ("nan", "inf", "-inf"):
        monkeypatch.setenv("X_F", raw)
        with pytest.raises(ImproperlyConfigured, match="finite"):
            env_float("X_F", 1.0, minimum=0)
    monkeypatch.setenv("X_F", " 2.5 ")
    assert env_float("X_F", 1.0, minimum=0) == 2.5
    monkeypatch.setenv("X_L", " a, b ,,c ")
    assert env_list("X_L") == ["a", "b", "c"]


def test_env_networks_accepts_addresses_and_cidrs_and_rejects_a_typo(monkeypatch):
    monkeypatch.setenv("X_NETS", "10.0.0.1, 10.0.0.0/8,::1, fd00::/8")
    assert env_networks("X_NETS") == ["10.0.0.1", "10.0.0.0/8", "::1", "fd00::/8"]
    monkeypatch.setenv("X_NETS", "10.0.0.0/8,10.0.0.300")
    with pytest.raises(ImproperlyConfigured, match=r"10\.0\.0\.300"):
        env_networks("X_NETS")


def test_env_secret_reads_a_file_and_fails_on_a_missing_one(monkeypatch, tmp_path):
    secret = tmp_path / "s"
    secret.write_text("from-file\n")
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert env_secret("X_SECRET") == "from-file"
    monkeypatch.setenv("X_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured):
        env_secret("X_SECRET")


def test_database_url_parsing():
    pg = parse_database_url("postgres://u:p%40ss@db.internal:5433/hl?sslmode=require")
    assert pg["ENGINE"] == "django.db.backends.postgresql"
    assert (pg["NAME"], pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"]) == (
        "hl",
        "u",
        "p@ss",
        "db.internal",
        "5433",
    )
    assert pg["OPTIONS"] == {"sslmode": "require"}
    with pytest.raises(ImproperlyConfigured):
        parse_database_url("mysql://x/y")
    with pytest.raises(ImproperlyConfigured):
        parse_database_url("postgres://host/")


def _run_settings(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HLEKKR_", "DATABASE_URL", "SECRET_KEY"))}
    base.update({"DJANGO_SETTINGS_MODULE": "hlekkr.settings", **env})
    command = args or ("-c", "import django; django.setup()")
    return subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120, check=False
    )


PRODUCTION = {
    "HLEKKR_ENV": "production",
    "SECRET_KEY": "k" * 20 + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_",
    "JWT_SIGNING_KEY": "j" * 20 + "ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210_-",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/hlekkr",
    "ALLOWED_HOSTS": "hlekkr.example",
}


@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS", "JWT_SIGNING_KEY"])
def test_production_refuses_to_start_without_each_secret(missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = _run_settings(env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_production_refuses_a_jwt_key_equal_to_the_secret_key():
    result = _run_settings({**PRODUCTION, "JWT_SIGNING_KEY": PRODUCTION["SECRET_KEY"]})
    assert result.returncode != 0
    assert "JWT_SIGNING_KEY must differ" in result.stderr


@pytest.mark.slow
def test_check_deploy_passes_in_production_with_no_warnings():
    result = _run_settings(PRODUCTION, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_an_unknown_environment_name_is_refused():
    result = _run_settings({"HLEKKR_ENV": "staging-ish"})
    assert result.returncode != 0
    assert "HLEKKR_ENV" in result.stderr
