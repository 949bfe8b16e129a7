"""Shared fixtures: a real Celery worker process on the test database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from taskops import recording
from taskops.wire.lanes import lane_of
from tests.celery_app import app as celery_app

BASE_DIR = Path(__file__).resolve().parent.parent
WORKER_START_TIMEOUT = 90.0


class WorkerProcess:
    """A ``celery worker`` subprocess whose log the tests can read."""

    def __init__(self, name: str, log_path: Path, process: subprocess.Popen[bytes]) -> None:
        self.name = name
        self.log_path = log_path
        self.process = process

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = WORKER_START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_alive():
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.log()}")
            if " ready." in self.log():
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.is_alive():
            self.process.terminate()  # warm shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def purge_test_broker() -> None:
    """Start from an empty queue: a message left by an earlier run must not run now."""
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        shutil.rmtree(settings.TEST_BROKER_DIR, ignore_errors=True)
        os.makedirs(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"], exist_ok=True)
        os.makedirs(settings.CELERY_BROKER_TRANSPORT_OPTIONS["control_folder"], exist_ok=True)
        os.makedirs(settings.CELERY_BROKER_TRANSPORT_OPTIONS["processed_folder"], exist_ok=True)
    else:
        with celery_app.connection_for_write() as conn:
            for queue in (settings.CELERY_TASK_DEFAULT_QUEUE, lane_of(settings.CELERY_TASK_DEFAULT_QUEUE)):
                conn.default_channel.queue_declare(queue, durable=True, auto_delete=False)  # type: ignore[attr-defined]
                conn.default_channel.queue_purge(queue)  # type: ignore[attr-defined]


def start_worker_process(
    *extra_args: str, concurrency: int = 2, env: dict[str, str] | None = None, queue: str | None = None
) -> WorkerProcess:
    """Start ``celery -A tests.celery_app worker`` on the test database (unless ``env`` says) and broker.

    It consumes ``queue`` (default: the test queue) and, as every worker with taskops, its lane.
    """
    name = f"test-{uuid.uuid4().hex[:8]}@%h"
    log_dir = Path(settings.VAR_DIR) / "test-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name.split('@')[0]}.log"
    worker_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "TASKOPS_TEST_WORKER_DB": str(connection.settings_dict["NAME"]),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.celery_app",
        "worker",
        "--loglevel=INFO",
        f"--hostname={name}",
        f"--concurrency={concurrency}",
        f"--queues={queue or settings.CELERY_TASK_DEFAULT_QUEUE}",
        "--without-mingle",
        "--without-gossip",
        *extra_args,
    ]
    return launch_worker(name, command, BASE_DIR, worker_env, log_path)


def launch_worker(name: str, command: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> WorkerProcess:
    """Run a worker ``command``, its output to ``log_path``; return once it is ready (stopped if it never is)."""
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    worker = WorkerProcess(name, log_path, process)
    try:
        worker.wait_ready()
    except BaseException:
        worker.stop()
        raise
    return worker


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Let the background writer finish before the test's fixtures (and its database) go away.

    A dispatch the test made but did not wait for must not land in the next
    test's tables.
    """
    # flush() is False too when a record was dropped or failed (a test may do that on purpose): only the backlog counts.
    if not recording.flush(timeout=30) and recording.backlog():
        pytest.fail("the taskops background writer did not catch up within 30s")
    return (yield)


@pytest.fixture(scope="session", autouse=True)
def stop_writer_before_the_test_database_goes(django_db_setup: Any) -> Iterator[None]:
    """The writer thread's connection would keep PostgreSQL from dropping the test database."""
    yield
    recording.shutdown(timeout=30)


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup: Any, django_db_blocker: Any) -> Iterator[WorkerProcess]:
    """A real prefork worker process, shared by the session's end-to-end tests."""
    purge_test_broker()
    worker = start_worker_process()
    yield worker
    worker.stop()


@pytest.fixture
def worker(celery_worker_process: WorkerProcess, transactional_db: Any) -> WorkerProcess:
    """The shared worker, with a database whose commits it can see."""
    if not celery_worker_process.is_alive():
        pytest.fail(f"the worker died:\n{celery_worker_process.log()}")
    return celery_worker_process


#: A broker address nothing listens on: publishing there is refused at once, as by a broker that is down.
UNREACHABLE_BROKER = "amqp://guest:guest@127.0.0.1:9//"


@pytest.fixture
def broker_down() -> Iterator[None]:
    """Publishing goes to a broker that is down (a real refused connection, kombu's own retries and errors)."""
    saved = celery_app.conf.broker_write_url

    def forget_connections() -> None:
        celery_app._pool = None  # type: ignore[attr-defined]
        celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]

    celery_app.conf["broker_write_url"] = UNREACHABLE_BROKER
    forget_connections()
    yield
    celery_app.conf["broker_write_url"] = saved
    forget_connections()
