"""The host project's settings: embedded default and production checks.

Each check runs in a subprocess with ``config.settings``: the test process
itself runs on the suite's own settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent
#: A var/ folder of their own for the checks that need one (database, broker folders).
SCRATCH_VAR_DIR = BASE_DIR / "var" / "settings-test"

#: The production environment that the README recommends.
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnop",
    "ALLOWED_HOSTS": "ops.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://ops.example.com",
    "DJANGO_SETTINGS_MODULE": "config.settings",
}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if key not in {"DEBUG", "SECRET_KEY"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_recommended_production_env() -> None:
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_without_secret_key_refuses_to_start() -> None:
    env = {**PRODUCTION_ENV, "SECRET_KEY": ""}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_demo_models_and_migrations_agree() -> None:
    env = {"DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": "", "TASKOPS_VAR_DIR": str(SCRATCH_VAR_DIR)}
    result = run_manage("makemigrations", "--check", "--dry-run", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``code`` after ``django.setup()`` with the host project's settings."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=BASE_DIR,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_embedded_default_uses_filesystem_broker_and_sqlite() -> None:
    code = (
        "from django.conf import settings as s;"
        "print(s.CELERY_BROKER_URL, s.DATABASES['default']['ENGINE'],"
        " s.CELERY_BROKER_TRANSPORT_OPTIONS['control_folder'])"
    )
    result = run_python(code, env={"TASKOPS_VAR_DIR": str(SCRATCH_VAR_DIR)})
    assert result.returncode == 0, result.stderr
    broker, engine, control = result.stdout.split()
    assert broker == "filesystem://"
    assert engine == "django.db.backends.sqlite3"
    assert Path(control).is_absolute()
    assert Path(control).is_dir()


def test_celery_db_reuse_max_reaches_the_django_fixup() -> None:
    code = (
        "from celery.fixups.django import DjangoWorkerFixup;"
        "from django.conf import settings;"
        "from config.celery import app;"
        "print(settings.CELERY_DB_REUSE_MAX, DjangoWorkerFixup(app).db_reuse_max)"
    )
    result = run_python(code, env={"TASKOPS_VAR_DIR": str(SCRATCH_VAR_DIR)})
    assert result.returncode == 0, result.stderr
    reuse_max, fixup_reuse_max = (int(value) for value in result.stdout.split())
    assert reuse_max >= 100
    assert fixup_reuse_max == reuse_max
