"""A worker whose database is cut while it runs tasks recovers, and loses no record of them."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import WorkerProcess, start_worker_process
from tests.faults.conftest import DATABASE, DIRECT_URL, process_env, rows, sql
from tests.faults.proxy import Proxy

#: Seconds the worker's database stays away.
CUT = 4.0
#: Seconds the tasks get to settle once the database is back.
SETTLE = 90.0
FINAL = {"SUCCESS", "FAILURE"}


@pytest.fixture
def cut_worker(proxy: Proxy, fault_queue: str) -> Iterator[WorkerProcess]:
    """A worker on the fault tests' database through the proxy, with its connections reused (DB_REUSE_MAX)."""
    env = process_env(proxy.url_for(DATABASE))
    env["TASKOPS_TEST_WORKER_DB"] = DATABASE
    worker = start_worker_process(concurrency=2, env=env, queue=fault_queue)
    yield worker
    worker.stop()


def settled(task_ids: list[str], timeout: float) -> dict[str, str]:
    """The tasks' states once none is waiting or running (or as they are after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        states = rows(task_ids)
        if (len(states) == len(task_ids) and set(states.values()) <= FINAL) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def test_a_worker_recovers_after_a_database_cut(
    proxy: Proxy, cut_worker: WorkerProcess, start_publisher: Any, fault_queue: str
) -> None:
    publisher = start_publisher(DIRECT_URL)  # the publisher's database stays up: only the worker's is cut
    assert publisher.ask("question")["pk"]
    before = publisher.ask("publish", n=20, queue=fault_queue)["ids"]
    assert publisher.ask("flush", seconds=30)["flushed"]
    assert set(settled(before, SETTLE).values()) == {"SUCCESS"}, cut_worker.log()

    proxy.cut()
    during = publisher.ask("publish", n=40, queue=fault_queue)["ids"]
    assert publisher.ask("flush", seconds=30)["flushed"]
    time.sleep(CUT)
    proxy.restore()
    after = publisher.ask("publish", n=40, queue=fault_queue)["ids"]
    assert publisher.ask("flush", seconds=30)["flushed"]

    states = settled(before + during + after, SETTLE)
    assert cut_worker.is_alive()
    assert len(states) == len(before + during + after)
    stuck = {task_id: state for task_id, state in states.items() if state not in FINAL}
    assert not stuck, cut_worker.log()  # none left PENDING or STARTED
    # Runs again once the database answers (before: "the connection is closed" until the queue drained).
    assert {states[task_id] for task_id in after} == {"SUCCESS"}, cut_worker.log()
    log = cut_worker.log()
    # One line per process for the outage, not one per update kept.
    kept = re.findall(r"/([\w-]+)\] taskops: the database is unavailable [^\[]*?; worker updates are kept", log)
    assert 1 <= len(kept) == len(set(kept)), kept
    # A task that ran is SUCCESS; one that Celery could not start (the result backend was cut too) is
    # FAILURE, never SUCCESS: before, a task whose STARTED could not be stored was recorded SUCCESS.
    ran = set(sql("SELECT task_id FROM django_celery_results_taskresult WHERE status = 'SUCCESS'"))
    for task_id in during:
        assert (states[task_id] == "SUCCESS") == ((task_id,) in ran)
    during_states = sorted(states[task_id] for task_id in during)
    print("tasks published during the cut:", {state: during_states.count(state) for state in set(during_states)})
