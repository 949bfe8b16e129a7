"""A database outage while publishing: nothing lost, no publish held up, flush() tells the truth."""

from __future__ import annotations

import time
from typing import Any

from tests.faults.conftest import DIRECT_URL, rows
from tests.faults.proxy import Proxy

#: Seconds the database stays away in the test (the mechanism is the same for 30 s: docs/reliability.md).
OUTAGE = 4.0
#: A generous bound on one publish: recording must never hold it up (PUBLISH_WAIT is 0.05 s).
PUBLISH_BOUND = 2.0


def test_an_outage_during_publishing_loses_no_record(proxy: Proxy, start_publisher: Any, fault_queue: str) -> None:
    publisher = start_publisher(proxy.url_for("taskops_faults_proxy"))
    assert publisher.ask("question")["pk"]
    warm = publisher.ask("publish", n=5, queue=fault_queue)
    assert publisher.ask("flush", seconds=30)["flushed"]  # written through the proxy

    proxy.cut()
    cut_at = time.monotonic()
    during: list[dict[str, Any]] = []
    while time.monotonic() - cut_at < OUTAGE:
        during.append(publisher.ask("publish", n=50, queue=fault_queue))
    held = publisher.ask("flush", seconds=1)
    proxy.restore()
    after = publisher.ask("publish", n=20, queue=fault_queue)
    settled = publisher.ask("flush", seconds=60)

    ids = [*warm["ids"], *(i for batch in during for i in batch["ids"]), *after["ids"]]
    assert len(ids) > 200
    assert all(not batch["errors"] for batch in (warm, *during, after))
    assert max(batch["slowest"] for batch in during) < PUBLISH_BOUND
    assert not held["flushed"]  # the database is away: flush says the records are not written
    assert held["backlog"] > 0
    assert settled == {**settled, "flushed": True, "backlog": 0, "dropped": 0}
    assert settled["errors"] == 0  # an outage is not a recorder error
    found = rows(ids)
    assert len(found) == len(ids)  # every record, none lost
    assert set(found.values()) == {"PENDING"}
    log = publisher.log()
    assert log.count("the database is unavailable") == 1  # one line for the outage, not one per record
    assert log.count("answers again") == 1


def test_delay_against_a_black_holed_database_returns_within_the_bound(
    proxy: Proxy, start_publisher: Any, fault_queue: str
) -> None:
    publisher = start_publisher(proxy.url_for("taskops_faults_proxy"), WRITE_QUEUE_RECORDS=50, PUBLISH_WAIT=0.05)
    assert publisher.ask("question")["pk"]
    assert publisher.ask("flush", seconds=30)["flushed"]

    proxy.black_hole()  # connections accepted, nothing ever answered
    stuck = publisher.ask("publish", n=300, queue=fault_queue)
    held = publisher.ask("flush", seconds=1)
    proxy.restore()  # the held connections are closed: the writer sees an error, and tries again
    settled = publisher.ask("flush", seconds=60)

    assert not stuck["errors"]
    assert stuck["slowest"] < PUBLISH_BOUND  # before: 130 s a call once the queue was full
    assert not held["flushed"]
    assert held["backlog"] == len(stuck["ids"])  # kept: 50 in memory, the rest in the spool file
    assert settled == {**settled, "flushed": True, "backlog": 0, "dropped": 0}
    assert len(rows(stuck["ids"])) == len(stuck["ids"])


def test_the_direct_database_is_the_proxied_one(start_publisher: Any, fault_queue: str) -> None:
    publisher = start_publisher(DIRECT_URL)
    assert publisher.ask("question")["pk"]
    published = publisher.ask("publish", n=3, queue=fault_queue)
    assert publisher.ask("flush", seconds=30)["flushed"]
    assert set(rows(published["ids"]).values()) == {"PENDING"}
