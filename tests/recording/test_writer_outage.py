"""The background writer through an outage: nothing lost, nothing unbounded, a few log lines."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from taskops.recording import writer as writer_module
from taskops.recording.writer import Writer

TIMEOUT = 30.0


class Outage(Exception):
    """What the owner's is_outage() accepts: the batch is kept and tried again."""


class FlakySink:
    """A write_batch that raises Outage while ``down`` is set, and counts its attempts."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.attempts = 0
        self.written: list[int] = []

    def write(self, items: list[int]) -> int:
        self.attempts += 1
        if self.down.is_set():
            raise Outage("connection refused")
        self.written.extend(items)
        return 0


def make_writer(sink: FlakySink, **options: object) -> Writer[int]:
    settings: dict[str, object] = {"maxsize": 1000, "batch_size": 10, **options}
    writer: Writer[int] = Writer(
        sink.write,
        name="test-writer",
        on_stop=lambda: None,
        is_outage=lambda exc: isinstance(exc, Outage),
        **settings,  # type: ignore[arg-type]
    )
    writer.start()
    return writer


def test_an_outage_keeps_every_item_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="taskops.recording")
    sink = FlakySink()
    sink.down.set()
    writer = make_writer(sink)
    for item in range(100):
        assert writer.offer(item)
    assert not writer.flush(1.0)  # down: not written, and flush says so
    assert writer.in_outage()
    assert sink.attempts >= 2  # retried, with pauses: not a busy loop
    assert sink.attempts < 30
    sink.down.clear()
    assert writer.flush(TIMEOUT)
    assert sorted(sink.written) == list(range(100))  # nothing lost, nothing twice
    assert (writer.refused, writer.failed) == (0, 0)
    lines = [r.getMessage() for r in caplog.records]
    assert sum("database is unavailable" in line for line in lines) == 1
    assert sum("answers again" in line for line in lines) == 1
    assert len(lines) == 2  # one line for the outage, one for its end: none per item
    assert not writer.in_outage()
    assert writer.stop(TIMEOUT)


def test_a_long_outage_gets_a_summary_now_and_then(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "SUMMARY_INTERVAL", 0.3)
    monkeypatch.setattr(writer_module, "MAX_BACKOFF", 0.1)
    sink = FlakySink()
    sink.down.set()
    writer = make_writer(sink)
    assert writer.offer(1)
    time.sleep(1.0)
    sink.down.clear()
    assert writer.flush(TIMEOUT)
    summaries = [r for r in caplog.records if "still unavailable" in r.getMessage()]
    assert 1 <= len(summaries) <= 5
    assert writer.stop(TIMEOUT)


def test_the_queue_is_bounded_in_bytes_too() -> None:
    sink = FlakySink()
    sink.down.set()  # nothing leaves the queue
    writer = make_writer(sink, batch_size=1, max_bytes=100, size_of=lambda item: 40)
    assert writer.offer(1)  # taken by the writer, retried
    deadline = time.monotonic() + TIMEOUT
    while sink.attempts == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.offer(2)
    assert writer.offer(3)  # 80 bytes waiting
    assert not writer.offer(4)  # 120 would pass the budget of 100
    assert writer.refused == 1
    sink.down.clear()
    assert not writer.flush(TIMEOUT)  # 4 was dropped: flush tells
    assert sorted(sink.written) == [1, 2, 3]
    assert writer.stop(TIMEOUT)


def test_an_offer_waits_for_room_at_most_its_wait() -> None:
    sink = FlakySink()
    sink.down.set()
    writer = make_writer(sink, maxsize=1, batch_size=1)
    assert writer.offer(1)
    deadline = time.monotonic() + TIMEOUT
    while sink.attempts == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.offer(2)
    started = time.monotonic()
    assert not writer.offer(3, wait=0.2)  # full, and the database stays down
    waited = time.monotonic() - started
    assert 0.15 <= waited < 5.0
    sink.down.clear()
    assert writer.offer(4, wait=TIMEOUT)  # room comes once the database answers
    assert not writer.flush(TIMEOUT)
    assert sorted(sink.written) == [1, 2, 4]
    assert writer.stop(TIMEOUT)


def test_stop_during_an_outage_gives_up_after_its_timeout() -> None:
    sink = FlakySink()
    sink.down.set()
    writer = make_writer(sink)
    assert writer.offer(1)
    started = time.monotonic()
    assert not writer.stop(0.5)  # an exit does not hang on a dead database
    assert time.monotonic() - started < 5.0
    assert writer.backlog() == 1
    sink.down.clear()
    assert writer.stop(TIMEOUT)  # asked again: it ends once the database answers
    assert sink.written == [1]
