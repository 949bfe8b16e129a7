"""The background writer on its own: batches, flush, backpressure, errors, stop."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from taskops.recording.writer import Writer

TIMEOUT = 30.0


class Sink:
    """A write_batch that keeps what it got, and can be held inside a write."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.fail_on: set[int] = set()
        self.stopped = threading.Event()

    def write(self, items: list[int]) -> int:
        self.entered.set()
        assert self.release.wait(TIMEOUT)
        if self.fail_on & set(items):
            raise ValueError(f"cannot write {sorted(self.fail_on & set(items))}")
        self.batches.append(list(items))
        return 0


@pytest.fixture
def sink() -> Sink:
    return Sink()


def make_writer(sink: Sink, maxsize: int = 10, batch_size: int = 3, linger: float = 0.0) -> Writer[int]:
    writer: Writer[int] = Writer(
        sink.write, name="test-writer", maxsize=maxsize, batch_size=batch_size, linger=linger, on_stop=sink.stopped.set
    )
    writer.start()
    return writer


@pytest.fixture
def writer(sink: Sink) -> Iterator[Writer[int]]:
    started = make_writer(sink)
    yield started
    sink.release.set()
    assert started.stop(TIMEOUT)


def written(sink: Sink) -> list[int]:
    return [item for batch in sink.batches for item in batch]


def test_flush_waits_for_every_item_offered(writer: Writer[int], sink: Sink) -> None:
    with writer.paused():
        assert writer.offer(1)
        assert writer.offer(2)
        assert writer.offer(3)
        assert not writer.flush(0.1)  # held: nothing written yet
        assert sink.batches == []
    assert writer.flush(TIMEOUT)
    assert sink.batches == [[1, 2, 3]]  # queued meanwhile: one batch


def test_batches_are_bounded(writer: Writer[int], sink: Sink) -> None:
    with writer.paused():
        for item in range(7):
            assert writer.offer(item)
    assert writer.flush(TIMEOUT)
    assert sink.batches == [[0, 1, 2], [3, 4, 5], [6]]


def test_full_queue_refuses_instead_of_blocking_or_dropping(sink: Sink) -> None:
    writer = make_writer(sink, maxsize=2)
    sink.release.clear()
    assert writer.offer(1)
    assert sink.entered.wait(TIMEOUT)  # the writer holds 1, inside its write
    assert writer.offer(2)
    assert writer.offer(3)
    assert not writer.offer(4)  # maxsize 2: refused (the owner counts it), never blocking
    assert writer.refused == 1
    sink.release.set()
    assert not writer.flush(TIMEOUT)  # all written but 4: flush says so
    assert written(sink) == [1, 2, 3]
    assert writer.flush(TIMEOUT)  # nothing lost since the last flush
    assert writer.stop(TIMEOUT)


def test_a_failing_batch_does_not_stop_the_writer(
    writer: Writer[int], sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    sink.fail_on = {2}
    with writer.paused():
        assert writer.offer(1)
        assert writer.offer(2)
    assert not writer.flush(TIMEOUT)  # failed, logged: settled, and flush tells the loss
    assert writer.failed == 2
    assert "failed on a batch of 2" in caplog.text
    assert writer.offer(3)
    assert writer.flush(TIMEOUT)
    assert written(sink) == [3]


def test_stop_writes_what_is_queued_then_refuses(writer: Writer[int], sink: Sink) -> None:
    with writer.paused():
        assert writer.offer(1)
        assert writer.offer(2)
    assert writer.stop(TIMEOUT)
    assert written(sink) == [1, 2]
    assert sink.stopped.is_set()  # on_stop ran (the recorder closes its connection there)
    assert not writer.is_running()
    assert not writer.offer(3)
    assert not writer.flush(TIMEOUT)  # nothing left to wait for, but 3 was refused: flush says so


def test_lingering_gathers_a_trickle_and_flush_cuts_it_short(sink: Sink) -> None:
    writer = make_writer(sink, linger=600)
    assert writer.offer(1)
    assert writer.offer(2)  # one at a time, as a slow publisher hands them over
    assert writer.flush(5)  # would wait out the 600 s linger if flush did not end it
    assert writer.offer(3)
    assert writer.flush(5)
    assert writer.offer(4)
    assert writer.stop(5)  # the stop mark ends a linger too
    assert sink.batches == [[1, 2], [3], [4]]
