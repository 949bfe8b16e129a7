"""Lanes: the queues that only workers with taskops consume.

A Celery worker without taskops cannot read a message that carries taskops
envelopes, and nothing in a message keeps it on the broker once such a worker
takes it (measured in Celery 5.7's consumer): kombu's JSON decoder raises
``DecodeError('Unsupported type')``, ``Consumer.on_decode_error`` logs "Can't
decode message body" and **acks** it; a content type the worker does not
accept ends in ``on_invalid_task``, which **rejects** it without requeue (the
Redis transport deletes it, RabbitMQ drops it unless the queue has a
dead-letter exchange). So taskops keeps its messages off the queues such
workers read:

- a publisher with taskops sends each task to the *lane* of the queue Celery
  routed it to: the queue's name plus ``TASKOPS["QUEUE_SUFFIX"]``
  (``celery`` -> ``celery.taskops``), a direct queue with the same arguments
  (durability, queue type, priority);
- a worker with taskops consumes each of its queues *and* their lanes.

A worker without taskops never sees a lane, so it never takes a message it
would drop; its own messages (plain JSON, from publishers without taskops)
stay on the plain queues, which workers with taskops read too. The admin and
the records name the queue, not its lane (:func:`queue_of`).

An empty suffix turns lanes off (every worker of the fleet has taskops).
Broadcast queues are left alone.
"""

from __future__ import annotations

from typing import Any

from celery import _state as celery_state
from kombu import Exchange, Queue
from kombu.common import Broadcast

from taskops.conf import taskops_settings

__all__ = ["LaneRouter", "add_lanes", "install_router", "lane_of", "lane_queue", "queue_of"]


def suffix() -> str:
    value = taskops_settings.QUEUE_SUFFIX
    return value if isinstance(value, str) else ""


def lane_of(name: str) -> str:
    """The lane of queue ``name`` (``name`` itself when lanes are off or it is a lane)."""
    end = suffix()
    return name if not end or name.endswith(end) else name + end


def queue_of(name: str) -> str:
    """The queue a lane belongs to (``name`` itself for a plain queue)."""
    end = suffix()
    return name[: -len(end)] if end and name.endswith(end) and len(name) > len(end) else name


def lane_queue(queue: Queue) -> Queue:
    """The lane of ``queue``: a direct queue of its own with the same declaration arguments."""
    name = lane_of(queue.name)
    if name == queue.name:
        return queue
    fields = queue.as_dict()
    exchange = queue.exchange
    fields.update(
        name=name,
        exchange=Exchange(name, "direct", durable=exchange.durable, delivery_mode=exchange.delivery_mode),
        routing_key=name,
        bindings=[],
        alias=None,
    )
    return Queue(**fields)


def _has_lane(queue: Any) -> bool:
    return isinstance(queue, Queue) and not isinstance(queue, Broadcast) and lane_of(queue.name) != queue.name


class LaneRouter:
    """Celery's router, whose every destination is moved to its queue's lane.

    Installed on the app by :func:`install_router`; ``app.send_task`` (which
    every publish goes through: ``delay``, ``apply_async``, ``send_task`` by
    name, retries, chains, re-dispatch) asks it for the destination. Celery's
    own router is made at the first route, when the app is configured.
    """

    def __init__(self, amqp: Any, router: Any = None) -> None:
        self._amqp = amqp
        self._router = router

    @property
    def router(self) -> Any:
        if self._router is None:
            self._router = self._amqp.Router()
        return self._router

    def __getattr__(self, name: str) -> Any:
        return getattr(self.router, name)

    def route(self, options: dict[str, Any], name: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        options = self.router.route(options, name, *args, **kwargs)
        queue = options.get("queue")
        if not isinstance(queue, Queue) or not _has_lane(queue):
            return options
        # The lane is a direct queue: Celery publishes to it by name (its routing key).
        options = {key: value for key, value in options.items() if key not in ("exchange", "routing_key")}
        options["queue"] = lane_queue(queue)
        options["exchange_type"] = "direct"
        return options


def install_router(app: Any) -> None:
    """Route the app's tasks to lanes (idempotent; reads no configuration)."""
    amqp = app.amqp
    current = amqp.__dict__.get("router")
    if not isinstance(current, LaneRouter):
        amqp.router = LaneRouter(amqp, current)


def install_all() -> None:
    """Route every Celery app of this process to lanes: its messages are encoded by taskops' codec.

    Called when Django is ready (the project's app exists by then); the Task
    base installs it again on any app that binds a task later.
    """
    for app in list(celery_state._get_active_apps()):  # type: ignore[attr-defined]  # Celery has no public list
        install_router(app)


def add_lanes(sender: Any = None, instance: Any = None, **kwargs: Any) -> None:
    """``celeryd_after_setup``: the worker consumes the lane of each queue it consumes (after ``-Q``)."""
    app = getattr(instance, "app", None)
    if app is None:
        return
    queues = app.amqp.queues
    for queue in list(queues.consume_from.values()):
        if _has_lane(queue):
            queues.select_add(lane_queue(queue))
