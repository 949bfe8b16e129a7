"""Test settings: the host project's, plus the test-only app.

The database is a real one the worker subprocess can share: a SQLite file
under ``var/`` by default, or ``DATABASE_URL`` (PostgreSQL in CI). The broker
is ``CELERY_BROKER_URL`` when set (Redis in CI), else kombu's filesystem
transport in a folder of its own. ``TASKOPS_TEST_WORKER_DB`` is set by the
worker fixture so that the worker process uses the test database.
"""

from __future__ import annotations

import os

from config.settings import *  # noqa: F403
from config.settings import DATABASES, INSTALLED_APPS, VAR_DIR, filesystem_broker_options

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

_default_db = DATABASES["default"]
if _default_db["ENGINE"] == "django.db.backends.sqlite3":
    _default_db["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
if os.environ.get("TASKOPS_TEST_WORKER_DB"):
    _default_db["NAME"] = os.environ["TASKOPS_TEST_WORKER_DB"]

TEST_BROKER_DIR = VAR_DIR / "test-broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = (
    filesystem_broker_options(TEST_BROKER_DIR) if CELERY_BROKER_URL.startswith("filesystem") else {}
)
# A queue of its own, so that a test run never consumes a developer's tasks.
CELERY_TASK_DEFAULT_QUEUE = "taskops-tests"
