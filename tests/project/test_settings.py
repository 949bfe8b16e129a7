"""The host project's settings: secure by default, development mode on request, production checks.

Each case runs in a subprocess with ``config.settings`` and an environment of
its own (``tests/project/helpers.py``): the test process itself runs on the
suite's own settings.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.project.helpers import BASE_DIR, DEVELOPMENT, manage, project_env, python

#: The production environment that the README recommends.
PRODUCTION_ENV = {
    "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnop",
    "ALLOWED_HOSTS": "ops.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://ops.example.com",
}

#: The settings a case reads back, as JSON.
READ_SETTINGS = (
    "import json; from django.conf import settings as s;"
    "print(json.dumps({'DEBUG': s.DEBUG, 'SECRET_KEY': s.SECRET_KEY, 'ALLOWED_HOSTS': s.ALLOWED_HOSTS,"
    " 'SECURE_SSL_REDIRECT': s.SECURE_SSL_REDIRECT, 'SESSION_COOKIE_SECURE': s.SESSION_COOKIE_SECURE}))"
)


def read_settings(env: dict[str, str]) -> dict[str, object]:
    result = python(READ_SETTINGS, env=env)
    assert result.returncode == 0, result.stderr
    found: dict[str, object] = json.loads(result.stdout)
    return found


@pytest.fixture
def var_dir(tmp_path: Path) -> dict[str, str]:
    """A ``var/`` folder of the case's own (database, broker folders, generated key)."""
    return {"TASKOPS_VAR_DIR": str(tmp_path / "var")}


def test_check_deploy_is_clean_with_recommended_production_env() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_no_environment_refuses_to_start(var_dir: dict[str, str]) -> None:
    result = manage("check", env=var_dir)

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set" in result.stderr
    assert "set DEBUG=1 (make run does)" in result.stderr
    assert not (Path(var_dir["TASKOPS_VAR_DIR"]) / "secret-key").exists()


def test_production_without_secret_key_refuses_to_start() -> None:
    result = manage("check", env={**PRODUCTION_ENV, "DEBUG": "0", "SECRET_KEY": ""})

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_debug_is_off_unless_asked_for(var_dir: dict[str, str]) -> None:
    found = read_settings({**var_dir, "SECRET_KEY": PRODUCTION_ENV["SECRET_KEY"]})

    assert found["DEBUG"] is False
    assert found["ALLOWED_HOSTS"] == []
    assert found["SECURE_SSL_REDIRECT"] is True
    assert found["SESSION_COOKIE_SECURE"] is True


def test_development_mode_generates_a_private_key_once(tmp_path: Path) -> None:
    env = {**DEVELOPMENT, "TASKOPS_VAR_DIR": str(tmp_path / "var")}
    first = read_settings(env)
    again = read_settings(env)
    elsewhere = read_settings({**DEVELOPMENT, "TASKOPS_VAR_DIR": str(tmp_path / "other-var")})
    key_file = tmp_path / "var" / "secret-key"

    assert first["DEBUG"] is True
    assert first["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost", "[::1]"]
    assert first["SECRET_KEY"] == again["SECRET_KEY"] == key_file.read_text()
    assert len(str(first["SECRET_KEY"])) >= 50
    assert "insecure" not in str(first["SECRET_KEY"])
    assert elsewhere["SECRET_KEY"] != first["SECRET_KEY"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert sorted(path.name for path in key_file.parent.iterdir() if "secret-key" in path.name) == ["secret-key"]


def test_processes_that_start_together_agree_on_one_key(tmp_path: Path) -> None:
    """web, worker and beat start at once under ``make run``: they must sign with the same key."""
    env = project_env({**DEVELOPMENT, "TASKOPS_VAR_DIR": str(tmp_path / "var")})
    code = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    processes = [
        subprocess.Popen([sys.executable, "-c", code], cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    keys = {process.communicate(timeout=120)[0].strip() for process in processes}

    assert [process.returncode for process in processes] == [0] * 4
    assert keys == {(tmp_path / "var" / "secret-key").read_text()}


def test_secret_key_from_the_environment_wins_in_development(var_dir: dict[str, str]) -> None:
    found = read_settings({**DEVELOPMENT, **var_dir, "SECRET_KEY": "from-the-environment"})

    assert found["SECRET_KEY"] == "from-the-environment"
    assert not (Path(var_dir["TASKOPS_VAR_DIR"]) / "secret-key").exists()


def test_demo_models_and_migrations_agree(var_dir: dict[str, str]) -> None:
    result = manage("makemigrations", "--check", "--dry-run", env={**DEVELOPMENT, **var_dir})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


def test_embedded_default_uses_filesystem_broker_and_sqlite(var_dir: dict[str, str]) -> None:
    code = (
        "from django.conf import settings as s;"
        "print(s.CELERY_BROKER_URL, s.DATABASES['default']['ENGINE'],"
        " s.CELERY_BROKER_TRANSPORT_OPTIONS['control_folder'])"
    )
    result = python(code, env={**DEVELOPMENT, **var_dir})
    assert result.returncode == 0, result.stderr
    broker, engine, control = result.stdout.split()
    assert broker == "filesystem://"
    assert engine == "django.db.backends.sqlite3"
    assert Path(control).is_absolute()
    assert Path(control).is_dir()


def test_celery_db_reuse_max_reaches_the_django_fixup(var_dir: dict[str, str]) -> None:
    code = (
        "from celery.fixups.django import DjangoWorkerFixup;"
        "from django.conf import settings;"
        "from config.celery import app;"
        "print(settings.CELERY_DB_REUSE_MAX, DjangoWorkerFixup(app).db_reuse_max)"
    )
    result = python(code, env={**DEVELOPMENT, **var_dir})
    assert result.returncode == 0, result.stderr
    reuse_max, fixup_reuse_max = (int(value) for value in result.stdout.split())
    assert reuse_max >= 100
    assert fixup_reuse_max == reuse_max


def test_benchmarks_turn_development_mode_on_themselves(var_dir: dict[str, str]) -> None:
    """``make bench`` and ``python -m bench.<name>`` run with no environment, as they always did.

    Development mode lets them start without ``SECRET_KEY``; what they measure
    runs with DEBUG off, as deployed (``TASKOPS_BENCH_DEBUG=1``: on).
    """
    code = "from django.conf import settings; print(settings.DEBUG, settings.CELERY_TASK_DEFAULT_QUEUE)"
    result = python(code, env=var_dir, settings="bench.settings")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "taskops-bench"]

    debug = python(code, env={**var_dir, "TASKOPS_BENCH_DEBUG": "1"}, settings="bench.settings")
    assert debug.stdout.split() == ["True", "taskops-bench"]


#: The host project's beat schedule as its Celery app sees it, each task marked registered or not, and the
#: evaluation interval taskops reads.
READ_BEAT_SCHEDULE = (
    "import json; from config.celery import app; from taskops.conf import taskops_settings;"
    "app.loader.import_default_modules();"
    "entries = [dict(e, registered=e['task'] in app.tasks) for e in app.conf.beat_schedule.values()];"
    "print(json.dumps({'interval': taskops_settings.ALERTS_INTERVAL, 'entries': entries}))"
)


def test_beat_evaluates_the_alert_rules_every_alerts_interval(var_dir: dict[str, str]) -> None:
    result = python(READ_BEAT_SCHEDULE, env={**DEVELOPMENT, **var_dir})

    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    (entry,) = [e for e in found["entries"] if e["task"] == "taskops.alerts.evaluate"]
    assert entry["registered"] is True
    assert entry["schedule"] == found["interval"] == 60
    assert entry["options"] == {"expires": found["interval"]}


#: One metrics scrape in a process of the host project, once told to go: the database's figures, and the
#: queries that read dispatches.
SCRAPE = """
import json, sys
import django
django.setup()
from django.db import connection
from django.test.utils import CaptureQueriesContext
from taskops.alerts.metrics import exposition
sys.stdin.readline()
with CaptureQueriesContext(connection) as queries:
    text = exposition().decode()
print(json.dumps({
    "figures": text.split("# HELP taskops_recording")[0],
    "dispatch_queries": sum("taskops_dispatch" in query["sql"] for query in queries.captured_queries),
}))
"""


def test_web_processes_share_one_metrics_scrape(var_dir: dict[str, str]) -> None:
    """The embedded default keeps a scrape in a database table, which every process reads (README, "Metrics")."""
    env = {**DEVELOPMENT, **var_dir}
    for step in (["migrate", "--noinput"], ["createcachetable"]):
        result = manage(*step, env=env)
        assert result.returncode == 0, result.stdout + result.stderr

    # Both set Django up before the first scrapes: the second scrapes well within the cache's 5 s.
    first, second = (
        subprocess.Popen(
            [sys.executable, "-c", SCRAPE],
            cwd=BASE_DIR,
            env=project_env(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    )
    outputs = [process.communicate("go\n", timeout=120) for process in (first, second)]
    assert all(stdout for stdout, _stderr in outputs), outputs
    found = [json.loads(stdout) for stdout, _stderr in outputs]

    assert found[0]["dispatch_queries"] > 0, found  # computed by the first process
    assert found[1]["dispatch_queries"] == 0, found  # read by the second from the shared cache
    assert found[1]["figures"] == found[0]["figures"]


def test_cache_url_names_a_redis_cache(var_dir: dict[str, str]) -> None:
    code = (
        "from django.conf import settings as s; print(s.CACHES['default']['BACKEND'], s.CACHES['default']['LOCATION'])"
    )

    embedded = python(code, env={**DEVELOPMENT, **var_dir})
    redis = python(code, env={**DEVELOPMENT, **var_dir, "CACHE_URL": "redis://cache:6379/1"})
    other = python(code, env={**DEVELOPMENT, **var_dir, "CACHE_URL": "memcached://user:secret@cache:11211"})

    assert embedded.stdout.split() == ["django.core.cache.backends.db.DatabaseCache", "django_cache"]
    assert redis.stdout.split() == ["django.core.cache.backends.redis.RedisCache", "redis://cache:6379/1"]
    assert other.returncode != 0
    assert "CACHE_URL must be a redis:// or rediss:// URL, not memcached:..." in other.stderr
    assert "secret" not in other.stderr
