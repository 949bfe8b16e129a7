"""A project without django-celery-results starts, records and shows its dispatches.

Its settings (``tests/project/settings_without_results.py``) are the host
project's minus that app; each case runs ``manage.py``, a script or a
Celery worker in a subprocess, on a SQLite database and a filesystem broker
of its own.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import WorkerProcess, launch_worker
from tests.project.helpers import BASE_DIR, DEVELOPMENT, manage, project_env, python

SETTINGS = "tests.project.settings_without_results"

#: Publish a demo task with a model instance (no worker: the publisher records it), then open its pages.
PUBLISH_AND_VIEW = """
import json
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from demo.models import Question
from demo.tasks import notify_followers
from taskops import recording
from taskops.models import Dispatch

question = Question.objects.create(title="Where did the results go?", body="Left out on purpose.")
task_id = notify_followers.delay(question, "hello").id
recording.flush(timeout=30)
dispatch = Dispatch.objects.get(task_id=task_id)
client = Client(HTTP_HOST="localhost")
client.force_login(User.objects.create_superuser("operator", "operator@example.com", "not-a-real-password"))
detail = client.get(reverse("admin:taskops_dispatch_change", args=[dispatch.pk]))
dashboard = client.get(reverse("admin:taskops_dispatch_dashboard"))
print(json.dumps({
    "task_result": dispatch.task_result,
    "refs": [ref.object_pk for ref in dispatch.refs.all()],
    "question": question.pk,
    "status": [detail.status_code, dashboard.status_code],
    "detail_names_the_question": question.title in detail.text,
    "detail_says_no_result": "No result stored for this task id" in detail.text,
}))
"""

#: Publish a demo task with a model instance, then wait for the worker to run it and record its end.
PUBLISH_AND_WAIT = """
import json, time
from demo.models import Question
from demo.tasks import notify_followers
from taskops import recording
from taskops.models import FINISHED_STATES, Dispatch

question = Question.objects.create(title="Run without results", body="A worker, and no result backend.")
task_id = notify_followers.delay(question, "hello").id
recording.flush(timeout=30)
deadline = time.monotonic() + 60
while True:
    dispatch = Dispatch.objects.get(task_id=task_id)
    if dispatch.state in FINISHED_STATES or time.monotonic() > deadline:
        break
    time.sleep(0.1)
ref = dispatch.refs.get()
print(json.dumps({
    "task_id": task_id,
    "state": dispatch.state,
    "source": dispatch.source,
    "started": dispatch.started_at is not None,
    "finished": dispatch.finished_at is not None,
    "worker": dispatch.worker,
    "exception": dispatch.exception,
    "task_result": dispatch.task_result,
    "ref": [ref.object_pk, ref.object_repr, ref.drift],
    "question": question.pk,
}))
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**DEVELOPMENT, "TASKOPS_VAR_DIR": str(tmp_path / "var")}


def test_check_passes(env: dict[str, str]) -> None:
    result = manage("check", "--fail-level", "WARNING", env=env, settings=SETTINGS)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_its_result_backend_left_behind_is_reported_not_a_crash(env: dict[str, str]) -> None:
    result = manage("check", env={**env, "CELERY_RESULT_BACKEND": "django-db"}, settings=SETTINGS)

    assert result.returncode == 1
    assert "taskops.E012" in result.stderr
    assert "explicit app_label" not in result.stderr


def test_dispatches_are_recorded_and_the_detail_page_renders(env: dict[str, str]) -> None:
    migrated = manage("migrate", "--noinput", env=env, settings=SETTINGS)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "django_celery_results" not in migrated.stdout

    result = python(PUBLISH_AND_VIEW, env=env, settings=SETTINGS)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])

    assert found["task_result"] is None
    assert found["refs"] == [str(found["question"])]
    assert found["status"] == [200, 200]
    assert found["detail_names_the_question"]
    assert found["detail_says_no_result"]


@pytest.fixture
def migrated(env: dict[str, str]) -> dict[str, str]:
    result = manage("migrate", "--noinput", env=env, settings=SETTINGS)
    assert result.returncode == 0, result.stdout + result.stderr
    return env


@pytest.fixture
def project_worker(migrated: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcess]:
    """``celery -A config worker`` (as the Procfile runs it) with these settings, on this case's database and broker."""
    name = f"no-results-{uuid.uuid4().hex[:8]}@%h"
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO", "--concurrency=1"]
    command += [f"--hostname={name}", "--without-mingle", "--without-gossip"]
    worker = launch_worker(name, command, BASE_DIR, project_env(migrated, SETTINGS), tmp_path / "worker.log")
    yield worker
    worker.stop()


def test_a_worker_runs_and_records_a_task_with_a_model_instance(
    migrated: dict[str, str], project_worker: WorkerProcess
) -> None:
    result = python(PUBLISH_AND_WAIT, env=migrated, settings=SETTINGS)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])

    assert found["state"] == "SUCCESS", (found, project_worker.log())
    assert (found["source"], found["started"], found["finished"], found["exception"]) == ("publisher", True, True, "")
    assert found["worker"].startswith(project_worker.name.split("@")[0])
    assert found["ref"] == [str(found["question"]), "Run without results", "unchanged"]
    assert found["task_result"] is None  # no django-celery-results: no stored result, and no error
    assert f"demo.tasks.notify_followers[{found['task_id']}] succeeded" in project_worker.log()
