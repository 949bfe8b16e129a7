"""A full writer queue: records past it are spooled, or dropped and counted; a publish never waits long."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import override_settings

from taskops import recording
from taskops.models import Dispatch
from taskops.recording import background, publisher, records
from tests.recording.test_publisher import record_for, written_ids
from tests.testapp.models import Question


@pytest.fixture
def fresh_writer() -> Iterator[None]:
    """A writer started by the test (with the test's settings), stopped after it."""
    assert recording.shutdown()
    yield
    assert recording.shutdown()


@pytest.fixture
def held_writer(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """(inside, release): the writer thread stops in its first write (``inside`` set) until ``release`` is set."""
    inside, release = threading.Event(), threading.Event()
    real_write = background.write

    def held_in_the_writer(records: list[records.DispatchRecord]) -> None:
        if threading.current_thread().name == "taskops-writer":
            inside.set()
            assert release.wait(30)
        real_write(records)

    monkeypatch.setattr(background, "write", held_in_the_writer)
    return inside, release


def test_past_the_queue_records_are_spooled_and_written(
    content_types: None, fresh_writer: None, held_writer: tuple[threading.Event, threading.Event], tmp_path: Path
) -> None:
    question = Question.objects.create(title="Q", body="b")
    inside, release = held_writer
    with override_settings(TASKOPS={"WRITE_QUEUE_RECORDS": 2, "SPOOL_DIR": str(tmp_path)}):
        publisher.submit(record_for("s1", question))
        assert inside.wait(30)  # the writer holds s1; its queue is empty
        started = time.monotonic()
        for task_id in ("s2", "s3", "s4", "s5"):
            publisher.submit(record_for(task_id, question))
        waited = time.monotonic() - started

    assert waited < 5.0  # s4 and s5 went to the spool at once
    spooled = [line for path in tmp_path.rglob("*.jsonl") for line in path.read_text().splitlines()]
    assert [json.loads(line)["task_id"] for line in spooled] == ["s4", "s5"]  # JSON lines
    release.set()
    assert recording.flush()  # nothing dropped
    assert written_ids("s1", "s2", "s3", "s4", "s5") == {"s1", "s2", "s3", "s4", "s5"}
    assert Dispatch.objects.get(task_id="s5").refs.get().object_pk == str(question.pk)
    assert not list(tmp_path.rglob("*.jsonl"))  # read back, then removed


def test_a_full_queue_waits_a_little_then_drops_and_counts(
    content_types: None,
    fresh_writer: None,
    held_writer: tuple[threading.Event, threading.Event],
    caplog: pytest.LogCaptureFixture,
) -> None:
    question = Question.objects.create(title="Q", body="b")
    inside, release = held_writer
    dropped = recording.dropped_count()
    with override_settings(TASKOPS={"WRITE_QUEUE_RECORDS": 2, "PUBLISH_WAIT": 0.2, "SPOOL_BYTES": 0}):
        publisher.submit(record_for("t1", question))
        assert inside.wait(30)  # the writer holds t1; its queue is empty
        started = time.monotonic()
        for task_id in ("t2", "t3", "t4"):
            publisher.submit(record_for(task_id, question))
        waited = time.monotonic() - started

    assert 0.15 <= waited < 5.0  # t4 waited PUBLISH_WAIT for room, then went
    assert written_ids("t1", "t2", "t3", "t4") == set()  # nothing written at the call
    assert recording.dropped_count() == dropped + 1
    assert "taskops-writer is full" in caplog.text
    release.set()
    assert not recording.flush()  # t4 was dropped: flush says so
    assert written_ids("t1", "t2", "t3", "t4") == {"t1", "t2", "t3"}
    assert recording.flush()  # nothing lost since
