"""Settings of the benchmarks: the host project's, with a database, queue and broker folder of their own.

``TASKOPS_BENCH_RECORDING=0`` turns recording off (the baseline), so the
worker subprocesses of a run can be started either way.
"""

from __future__ import annotations

import os

from bench.databases import bench_database_url

# PostgreSQL: never the configured database itself, one beside it.
_BENCH_URL = bench_database_url("recording_bench")
if _BENCH_URL:
    # Worker subprocesses inherit both, and so resolve the same database.
    os.environ["TASKOPS_BENCH_DATABASE_URL"] = os.environ["DATABASE_URL"] = _BENCH_URL

from config.settings import *  # noqa: E402, F403
from config.settings import DATABASES, VAR_DIR, filesystem_broker_options  # noqa: E402

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["NAME"] = VAR_DIR / "bench.sqlite3"

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = (
    filesystem_broker_options(VAR_DIR / "bench-broker") if CELERY_BROKER_URL.startswith("filesystem") else {}
)
CELERY_TASK_DEFAULT_QUEUE = "taskops-bench"

TASKOPS = {"RECORDING": os.environ.get("TASKOPS_BENCH_RECORDING", "1") == "1"}
# Measured as deployed: DEBUG off (Django then keeps no log of every query, and its
# cursors do not format each statement for it). ``bench`` sets DEBUG=1 in the
# environment only so that the project starts without a SECRET_KEY; the key it
# generated is kept. TASKOPS_BENCH_DEBUG=1 measures with DEBUG on.
DEBUG = os.environ.get("TASKOPS_BENCH_DEBUG") == "1"
LOG_LEVEL = "WARNING"
