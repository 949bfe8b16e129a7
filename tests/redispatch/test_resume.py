"""Resuming: the resuming user passes the service's checks; a stalled re-dispatch is taken over once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from django.utils import timezone

from taskops.models import Dispatch, Redispatch, RedispatchItem
from taskops.redispatch import Options, Refused, for_objects, replay, resume
from taskops.redispatch import publish as publish_module
from taskops.redispatch.publish import Lease, Superseded, publish_pending, save
from tests.factories import make_dispatch
from tests.redispatch.conftest import IDLE, saved_for_books
from tests.testapp.models import Book, Question
from tests.testapp.tasks import read_body, touch_book

pytestmark = pytest.mark.django_db(transaction=True)

FAN_OUT = "taskops.redispatch.fan_out"


def saved(user: User, count: int = 3) -> Redispatch:
    """A re-dispatch of touch_book for ``count`` books, saved and not published (to a queue nobody reads)."""
    return saved_for_books(user, count, Options(queue=IDLE))


def set_state(redispatch: Redispatch, outcome: str, quiet_for: float) -> None:
    beat = timezone.now() - dt.timedelta(seconds=quiet_for)
    Redispatch.objects.filter(pk=redispatch.pk).update(outcome=outcome, heartbeat_at=beat)


@override_settings(TASKOPS={"REDISPATCH_QUEUE": IDLE, "REDISPATCH_STALLED_AFTER": 60})
@pytest.mark.parametrize("outcome", [Redispatch.Outcome.RUNNING, Redispatch.Outcome.QUEUED])
def test_a_stalled_redispatch_is_taken_over_once(operator: User, published: list[Any], outcome: str) -> None:
    redispatch = saved(operator)
    set_state(redispatch, outcome, quiet_for=61)

    first, second = resume(redispatch, operator), resume(redispatch, operator)

    assert (first, second) == (True, False)
    assert [headers["task"] for headers in published] == [FAN_OUT]
    redispatch.refresh_from_db()
    assert redispatch.outcome == Redispatch.Outcome.QUEUED
    assert redispatch.heartbeat_at is not None
    assert timezone.now() - redispatch.heartbeat_at < dt.timedelta(seconds=5)  # its own heartbeat: not stalled


@override_settings(TASKOPS={"REDISPATCH_QUEUE": IDLE, "REDISPATCH_STALLED_AFTER": 60})
@pytest.mark.parametrize("outcome", [Redispatch.Outcome.RUNNING, Redispatch.Outcome.DONE])
def test_a_live_or_finished_redispatch_is_not_resumed(operator: User, published: list[Any], outcome: str) -> None:
    redispatch = saved(operator)
    set_state(redispatch, outcome, quiet_for=59 if outcome == Redispatch.Outcome.RUNNING else 3600)

    assert resume(redispatch, operator) is False
    assert published == []


def test_every_batch_is_a_heartbeat(operator: User, published: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    redispatch = saved(operator, count=5)
    beats: list[dt.datetime] = []
    real_renew = Lease.renew

    def renew(lease: Lease) -> None:
        real_renew(lease)
        beats.append(lease.beat)
        assert Redispatch.objects.get(pk=redispatch.pk).heartbeat_at == lease.beat

    monkeypatch.setattr(Lease, "renew", renew)
    with override_settings(TASKOPS={"REDISPATCH_BATCH_SIZE": 2}):
        publish_pending(redispatch)

    assert len(beats) == 3  # 2 + 2 + 1
    assert beats == sorted(beats)
    assert beats[0] > redispatch.created_at


def test_a_fan_out_taken_over_stops_at_its_next_batch(
    operator: User, published: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fan-out that was only slow: a resume took it over, so it publishes no further and counts nothing twice."""
    redispatch = saved(operator, count=6)
    real_batch = publish_module.publish_batch

    def batch_then_taken_over(*args: Any) -> None:
        real_batch(*args)
        set_state(redispatch, Redispatch.Outcome.RUNNING, quiet_for=3600)
        with override_settings(TASKOPS={"REDISPATCH_QUEUE": IDLE}):
            assert resume(redispatch, operator)

    monkeypatch.setattr(publish_module, "publish_batch", batch_then_taken_over)
    with override_settings(TASKOPS={"REDISPATCH_BATCH_SIZE": 2}):
        publish_pending(redispatch)

    redispatch.refresh_from_db()
    assert (redispatch.outcome, redispatch.published) == (Redispatch.Outcome.QUEUED, 2)
    assert [headers["task"] for headers in published] == [touch_book.name] * 2 + [FAN_OUT]
    lease = Lease(redispatch.pk, timezone.now())
    with pytest.raises(Superseded):
        lease.renew()


def test_resuming_needs_view_permission_on_the_objects(
    operator: User, make_user: Callable[..., User], published: list[Any]
) -> None:
    redispatch = saved(operator)
    Redispatch.objects.filter(pk=redispatch.pk).update(outcome=Redispatch.Outcome.FAILED)
    blind = make_user("blind", "taskops.redispatch_dispatch")

    with pytest.raises(Refused, match="You may not view books"):
        resume(redispatch, blind)
    with pytest.raises(Refused, match="permission to re-dispatch"):
        resume(redispatch, make_user("viewer", "testapp.view_book"))

    assert Redispatch.objects.get(pk=redispatch.pk).outcome == Redispatch.Outcome.FAILED
    assert published == []


def test_resuming_needs_the_task_still_allowed(make_user: Callable[..., User], published: list[Any]) -> None:
    user = make_user("reader", "taskops.redispatch_dispatch", "testapp.view_question")
    question = Question.objects.create(title="q", body="b")
    with override_settings(TASKOPS={"REDISPATCH_TASKS": [read_body.name]}):
        draft = for_objects(
            user=user, task_name=read_body.name, model_label="testapp.question", reason="r", pks=[question.pk]
        )
        redispatch = save(draft)
    Redispatch.objects.filter(pk=redispatch.pk).update(outcome=Redispatch.Outcome.FAILED)

    with pytest.raises(Refused, match="may not be re-dispatched"):
        resume(redispatch, user)  # the setting that allowed it is gone

    assert published == []
    assert redispatch.items.get().state == RedispatchItem.State.PENDING


def test_resuming_a_replay_needs_view_permission_on_its_objects(
    operator: User, make_user: Callable[..., User], published: list[Any]
) -> None:
    source = make_dispatch(Book.objects.create(title="b"), task_name=touch_book.name)
    redispatch = save(replay(user=operator, dispatches=Dispatch.objects.filter(pk=source.pk), reason="r"))
    Redispatch.objects.filter(pk=redispatch.pk).update(outcome=Redispatch.Outcome.FAILED)

    with pytest.raises(Refused, match="You may not view books"):
        resume(redispatch, make_user("blind", "taskops.redispatch_dispatch"))

    assert published == []
