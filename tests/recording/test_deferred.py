"""A worker's writes that meet an outage are kept, retried in order, and written once the database answers."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import OperationalError

from taskops import recording
from taskops.recording import worker
from taskops.recording.columns import Progress
from taskops.recording.worker_rows import WorkerWrite


class FlakyStore:
    """A store whose writes raise an outage error while ``down`` is set."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.written: list[str] = []

    def advance(self, write: WorkerWrite, using: str) -> None:
        if self.down.is_set():
            raise OperationalError("database is locked")  # an outage on SQLite and PostgreSQL alike
        self.written.append(write.task_id)


def a_write(task_id: str) -> WorkerWrite:
    return WorkerWrite(task_id, {"state": "STARTED"}, Progress("STARTED", 0), lambda: {}, lambda: [])


def test_worker_writes_through_an_outage_are_kept_in_order(
    transactional_db: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore()
    monkeypatch.setattr(worker, "store_for", lambda using: store)
    store.down.set()

    for task_id in ("start-1", "end-1", "start-2"):
        worker.advance(a_write(task_id))  # never raises: kept

    assert store.written == []
    assert not recording.flush(0.5)  # kept, not written: flush says so
    store.down.clear()
    worker.advance(a_write("end-2"))  # behind the kept ones, not before them
    assert recording.flush(30)
    assert store.written == ["start-1", "end-1", "start-2", "end-2"]
    assert caplog.text.count("worker updates are kept and retried") == 1  # one line for the outage
    worker.advance(a_write("start-3"))  # the outage is over: written at the call again
    assert store.written[-1] == "start-3"
    assert recording.backlog() == 0
