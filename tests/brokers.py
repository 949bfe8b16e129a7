"""The broker servers the interop tests use in every leg, whatever the leg's own broker.

CI always runs Redis and RabbitMQ; here each test gets queues of its own
(``taskops-interop-<random>``), on Redis database 7 by default. A test that
needs a server that is down fails and says which; it never skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kombu import Connection

REDIS_URL = os.environ.get("TASKOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
AMQP_URL = os.environ.get("TASKOPS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
BROKERS = {"redis": REDIS_URL, "rabbitmq": AMQP_URL}


def unique_queue() -> str:
    return f"taskops-interop-{uuid.uuid4().hex[:10]}"


@contextmanager
def connected(url: str) -> Iterator[Connection]:
    """A connection to ``url``, or a test failure that names the server."""
    connection = Connection(url, connect_timeout=5)
    try:
        connection.ensure_connection(max_retries=2, interval_start=1)
    except Exception as exc:  # noqa: BLE001  # any reason the server is unreachable fails the test alike
        connection.release()
        pytest.fail(f"the broker at {url} is not reachable ({exc!r}): the interop tests need it in every leg")
    try:
        yield connection
    finally:
        connection.release()


def message_count(url: str, queue: str) -> int:
    """Messages waiting in ``queue`` (0 when the broker has no such queue)."""
    with connected(url) as connection:
        channel: Any = connection.channel()
        try:
            return int(channel.queue_declare(queue=queue, passive=True).message_count)
        except connection.channel_errors:
            return 0
        finally:
            channel.close()


def delete_queues(url: str, *queues: str) -> None:
    with connected(url) as connection:
        for queue in queues:
            channel: Any = connection.channel()
            try:
                channel.queue_delete(queue=queue)
            except connection.channel_errors:
                pass
            finally:
                channel.close()
