"""Lanes: the router moves every destination to its queue's lane; workers consume both."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.test import override_settings
from kombu import Exchange, Queue
from kombu.common import Broadcast

from taskops.wire.lanes import LaneRouter, add_lanes, lane_of, lane_queue, queue_of
from tests.celery_app import app
from tests.testapp.tasks import add


def route(options: dict[str, Any]) -> dict[str, Any]:
    return LaneRouter(app.amqp).route(options, add.name, (1, 2), {})


def test_a_queue_and_its_lane_name_each_other() -> None:
    assert (lane_of("celery"), queue_of("celery.taskops")) == ("celery.taskops", "celery")
    assert (lane_of("celery.taskops"), queue_of("celery")) == ("celery.taskops", "celery")
    with override_settings(TASKOPS={"QUEUE_SUFFIX": ""}):
        assert (lane_of("celery"), queue_of("celery.taskops")) == ("celery", "celery.taskops")


def test_every_destination_moves_to_its_lane() -> None:
    default = route({})["queue"]
    explicit = route({"queue": "mail", "routing_key": "mail", "exchange": "mail"})

    assert (default.name, default.routing_key, default.exchange.name) == ("taskops-tests.taskops",) * 3
    assert explicit["queue"].name == "mail.taskops"
    # Published by the lane's name, not by the queue's exchange and key.
    assert "exchange" not in explicit
    assert "routing_key" not in explicit


def test_the_app_routes_through_lanes() -> None:
    assert isinstance(app.amqp.router, LaneRouter)
    assert app.amqp.router.route({}, add.name, (1, 2), {})["queue"].name == "taskops-tests.taskops"


def test_a_lane_is_declared_like_its_queue() -> None:
    quorum = Queue("work", Exchange("work", "topic"), routing_key="work.#", queue_arguments={"x-queue-type": "quorum"})

    lane = lane_queue(quorum)

    assert (lane.name, lane.routing_key, lane.exchange.name, lane.exchange.type) == (
        "work.taskops",
        "work.taskops",
        "work.taskops",
        "direct",
    )
    assert lane.queue_arguments == {"x-queue-type": "quorum"}
    assert lane.durable is quorum.durable


def test_broadcast_queues_and_an_empty_suffix_keep_their_destination() -> None:
    broadcast = Broadcast("everyone")
    assert route({"queue": broadcast})["queue"] is broadcast
    with override_settings(TASKOPS={"QUEUE_SUFFIX": ""}):
        assert route({})["queue"].name == "taskops-tests"


def test_a_worker_consumes_each_queue_and_its_lane() -> None:
    queues = app.amqp.Queues([Queue("a"), Queue("b"), Queue("c")])
    queues.select(["a", "b"])

    add_lanes(instance=SimpleNamespace(app=SimpleNamespace(amqp=SimpleNamespace(queues=queues))))

    assert sorted(queues.consume_from) == ["a", "a.taskops", "b", "b.taskops"]
