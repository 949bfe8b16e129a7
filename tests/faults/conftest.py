"""Fixtures of the fault tests: a PostgreSQL database of their own, a proxy in front of it, a publisher process.

These tests run in every CI leg: PostgreSQL is always up on the CI machine,
so whatever database the suite itself uses, they make their own
(:data:`DATABASE`), migrate it once, and point the processes they start at
it, through a :class:`~tests.faults.proxy.Proxy` when a test cuts it.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest
from django.conf import settings

from tests.celery_app import app as celery_app
from tests.faults.proxy import Proxy

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATABASE = "taskops_faults_proxy"
PG_PORT = 5432
DIRECT_URL = f"postgres://postgres@127.0.0.1:{PG_PORT}/{DATABASE}"
#: Seconds a command to the publisher may take before the test gives up on it.
ANSWER_TIMEOUT = 120.0


def sql(query: str, params: tuple[Any, ...] = (), database: str = DATABASE) -> list[tuple[Any, ...]]:
    """Run one statement on the fault tests' database (or another), straight to PostgreSQL."""
    with psycopg.connect(host="127.0.0.1", port=PG_PORT, user="postgres", dbname=database, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def process_env(database_url: str, **taskops: Any) -> dict[str, str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONUNBUFFERED": "1"}
    env["DATABASE_URL"] = database_url
    env.pop("TASKOPS_TEST_WORKER_DB", None)
    env["TASKOPS_TEST_SETTINGS"] = json.dumps(taskops)
    return env


@pytest.fixture(scope="session")
def fault_database() -> str:
    """A fresh, migrated PostgreSQL database for the processes these tests start."""
    sql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", database="postgres")
    sql(f"CREATE DATABASE {DATABASE}", database="postgres")
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "--verbosity=0"],
        cwd=BASE_DIR,
        env=process_env(DIRECT_URL),
        check=True,
        timeout=300,
    )
    return DATABASE


@pytest.fixture
def proxy(fault_database: str) -> Iterator[Proxy]:
    started = Proxy(PG_PORT)
    yield started
    started.stop()


@pytest.fixture
def fault_queue() -> Iterator[str]:
    """A queue of the test's own; emptied after it."""
    name = f"taskops-faults-{uuid.uuid4().hex[:8]}"
    yield name
    if not settings.CELERY_BROKER_URL.startswith("filesystem"):  # the suite's folder is emptied at its start
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_delete(name)  # type: ignore[attr-defined]


class Publisher:
    """The publishing process (:mod:`tests.faults.publisher`), driven one command at a time."""

    def __init__(self, database_url: str, log_path: Path, **taskops: Any) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.publisher"],
            cwd=BASE_DIR,
            env=process_env(database_url, **taskops),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self._answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            self._answers.put(line.decode())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ask(self, op: str, timeout: float = ANSWER_TIMEOUT, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"op": op, **command}) + "\n").encode())
        self.process.stdin.flush()
        try:
            answer: dict[str, Any] = json.loads(self._answers.get(timeout=timeout))
        except queue.Empty:
            pytest.fail(f"the publisher did not answer {op!r} within {timeout}s:\n{self.log()}")
        return answer

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.ask("quit", timeout=30)
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired, pytest.fail.Exception):
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture
def start_publisher(fault_database: str) -> Iterator[Any]:
    """``start_publisher(database_url, **TASKOPS)``: a publisher process, stopped after the test."""
    started: list[Publisher] = []
    log_dir = Path(settings.VAR_DIR) / "test-logs"
    log_dir.mkdir(parents=True, exist_ok=True)

    def start(database_url: str, **taskops: Any) -> Publisher:
        publisher = Publisher(database_url, log_dir / f"publisher-{uuid.uuid4().hex[:8]}.log", **taskops)
        started.append(publisher)
        return publisher

    yield start
    for publisher in started:
        publisher.stop()


def rows(task_ids: list[str]) -> dict[str, str]:
    """The state of each of these tasks' ``Dispatch`` rows in the fault tests' database."""
    found = sql("SELECT task_id, state FROM taskops_dispatch WHERE task_id = ANY(%s)", (task_ids,))
    return {task_id: state for task_id, state in found}
