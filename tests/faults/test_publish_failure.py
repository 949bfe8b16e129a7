"""A publish that raised leaves no row: a PENDING row would wait for a task that never runs."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from kombu.exceptions import OperationalError
from kombu.messaging import Producer

from taskops import recording
from taskops.models import Dispatch, State
from tests.recording.conftest import IDLE
from tests.testapp.models import Question
from tests.testapp.tasks import read_body


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every publish raises as kombu does when the broker is away; the ids it was asked to send."""
    refused: list[str] = []

    def publish(self: Producer, body: Any, **kwargs: Any) -> None:
        refused.append(kwargs["headers"]["id"])
        raise OperationalError("Error 111 connecting to the broker. Connection refused.")

    monkeypatch.setattr(Producer, "publish", publish)
    return refused


def test_a_publish_that_raised_is_not_left_pending(
    transactional_db: None, broker_down: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    question = Question.objects.create(title="Q", body="b")
    with pytest.raises(OperationalError):
        read_body.apply_async((question,), queue=IDLE, retry=False)
    with pytest.raises(OperationalError), transaction.atomic():
        read_body.apply_async((question,), queue=IDLE, retry=False)
    with pytest.raises(OperationalError), recording.batch():
        read_body.apply_async((question,), queue=IDLE, retry=False)
    assert len(broker_down) == 3
    monkeypatch.undo()  # the broker is back

    sent = read_body.apply_async((question,), queue=IDLE)

    assert recording.flush()
    assert not Dispatch.objects.filter(task_id__in=broker_down).exists()  # no PENDING row for what was never sent
    row = Dispatch.objects.get(task_id=sent.id)  # the next publish is recorded as usual, as itself
    assert row.state == State.PENDING
    assert row.refs.get().object_pk == str(question.pk)
