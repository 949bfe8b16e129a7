"""Settings of the test suite: taskops, what it needs, and the test-only app.

Standalone on purpose: the library's tests do not depend on the project that
hosts taskops (``config``) nor on its demo app (``tests/project/`` tests those).

The database is a real one the worker subprocess can share: a SQLite file
under ``var/`` by default, or ``DATABASE_URL`` (PostgreSQL in CI). The broker
is ``CELERY_BROKER_URL`` when set (Redis in CI), else kombu's filesystem
transport in a folder of its own. ``TASKOPS_TEST_WORKER_DB`` is set by the
worker fixture so that the worker process uses the test database.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dj_database_url
import django

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TASKOPS_VAR_DIR", BASE_DIR / "var")).resolve()

SECRET_KEY = "django-insecure-taskops-tests"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    # Above django.contrib.admin: taskops extends a few admin templates.
    "taskops",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_celery_results",
    "tests.testapp",
]
if django.VERSION < (6, 0):  # Django 6 has template partials built in.
    INSTALLED_APPS.append("template_partials")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "tests.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_from_env() -> dict[str, Any]:
    """``DATABASE_URL`` when set, else a SQLite file under ``var/``.

    SQLite gets WAL, a busy timeout and IMMEDIATE transactions so that the
    test process and the prefork worker can write side by side without
    "database is locked" errors.
    """
    url = os.environ.get("DATABASE_URL")
    if url:
        config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True))
    else:
        config = {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "db.sqlite3"}
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config.setdefault("OPTIONS", {}).update(
            {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            }
        )
        config["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    if os.environ.get("TASKOPS_TEST_WORKER_DB"):
        config["NAME"] = os.environ["TASKOPS_TEST_WORKER_DB"]
    return config


DATABASES = {"default": database_from_env()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

# The worker's log is read by the tests; taskops logs at INFO.
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}


# --- Celery (read by tests/celery_app.py with namespace="CELERY") ----------


def filesystem_broker_options(root: Path) -> dict[str, Any]:
    """Transport options for kombu's filesystem broker rooted at ``root``.

    The test process and the worker share one data folder; ``control_folder``
    makes broadcast (revoke, inspect) work too.
    """
    data = root / "data"
    control = root / "control"
    processed = root / "processed"
    for folder in (data, control, processed):
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(data),
        "data_folder_out": str(data),
        "control_folder": str(control),
        "processed_folder": str(processed),
        "store_processed": False,
    }


TEST_BROKER_DIR = VAR_DIR / "test-broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = (
    filesystem_broker_options(TEST_BROKER_DIR)
    if CELERY_BROKER_URL.startswith("filesystem")
    else json.loads(os.environ.get("TASKOPS_TEST_BROKER_OPTIONS") or "{}")  # the soak's visibility timeout
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_CACHE_BACKEND = "django-cache"
# The suite serves the metrics view from one process at a time: its own memory cache is right here
# (taskops.W050 warns deployments of it; tests/test_checks.py calls the check itself).
SILENCED_SYSTEM_CHECKS = ["taskops.W050"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_WORKER_SEND_TASK_EVENTS = True
# Celery's Django fixup closes the database connection after every task unless
# this is set; connections are recycled after this many tasks instead.
CELERY_DB_REUSE_MAX = 1000
# A queue of its own, so that a test run never consumes a developer's tasks.
CELERY_TASK_DEFAULT_QUEUE = "taskops-tests"

# The fault tests start processes with settings of their own (small queues, short waits).
TASKOPS: dict[str, Any] = json.loads(os.environ.get("TASKOPS_TEST_SETTINGS") or "{}")
# A worker subprocess that must hold its starts longer (tests/recording/test_starts_e2e.py).
if os.environ.get("TASKOPS_TEST_START_LINGER"):
    TASKOPS["START_LINGER"] = float(os.environ["TASKOPS_TEST_START_LINGER"])

# Mail stays in memory (django.core.mail.outbox); Django 6.1 configures mailers with MAILERS.
if django.VERSION >= (6, 1):
    MAILERS: dict[str, dict[str, Any]] = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
else:
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
