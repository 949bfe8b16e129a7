"""Arguments the publisher hid (``argsrepr``/``kwargsrepr``) or a setting names are never stored."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from celery import _state
from django.test import override_settings
from django.utils import timezone

from taskops import recording
from taskops import wire as codec
from taskops.models import Dispatch, ObjectRef
from taskops.recording import redaction
from taskops.recording.worker_rows import MessageFacts, worker_row
from taskops.wire import HEADER, CodecError
from tests.celery_app import app
from tests.recording.conftest import IDLE
from tests.testapp.models import Question
from tests.testapp.tasks import notify_followers

TOKEN = "API_TOKEN=sk-live-4f9a8b7c6d5e"
notify: Any = cast(Any, notify_followers)  # argsrepr/kwargsrepr are not in the type stubs


def stored(task_id: str) -> str:
    """Everything recorded about a dispatch, as text."""
    rows = [
        *Dispatch.objects.filter(task_id=task_id).values(),
        *ObjectRef.objects.filter(dispatch__task_id=task_id).values(),
    ]
    return json.dumps(rows, default=str)


def test_the_publishers_kwargsrepr_is_stored_instead_of_the_arguments(
    content_types: None, sent: list[dict[str, Any]]
) -> None:
    question = Question.objects.create(title="Q", body="b")

    result = notify.apply_async((question,), {"message": TOKEN}, kwargsrepr="{redacted}", queue=IDLE)

    assert recording.flush()
    row = Dispatch.objects.get(task_id=result.id)
    ref = row.refs.get()
    assert row.redacted
    # The publisher's kwargsrepr; Celery's argsrepr would be "(<Question: Q>,)": remade with the object by pk.
    assert (row.args, row.kwargs) == (f"(<testapp.question:{question.pk}>,)", "{redacted}")
    assert (ref.object_pk, ref.object_repr, ref.values) == (str(question.pk), "", {})  # by pk only
    assert ref.digests  # drift is still measured
    assert "sk-live" not in stored(result.id)
    assert sent[-1][HEADER]["redacted"] is True
    assert sent[-1]["argsrepr"] == row.args  # the message too: no log or event shows the object's str()


def test_the_side_celery_made_shows_no_objects_str(content_types: None, sent: list[dict[str, Any]]) -> None:
    """Whichever side the publisher gave, the other holds no object's str(), however deep."""
    question = Question.objects.create(title="Q-title-secret", body="b")
    label = f"<testapp.question:{question.pk}>"

    args_given = notify.apply_async((question,), {"message": question}, argsrepr="(hidden,)", queue=IDLE)
    by_name = app.send_task(
        notify_followers.name, ([question, {"q": question}],), {}, kwargsrepr="{hidden}", queue=IDLE
    )

    assert recording.flush()
    rows = {row.task_id: row for row in Dispatch.objects.filter(task_id__in=[args_given.id, by_name.id])}
    assert (rows[args_given.id].args, rows[args_given.id].kwargs) == ("(hidden,)", f"{{'message': {label}}}")
    assert (rows[by_name.id].args, rows[by_name.id].kwargs) == (f"([{label}, {{'q': {label}}}],)", "{hidden}")
    assert "Q-title-secret" not in stored(args_given.id) + stored(by_name.id)
    assert "Q-title-secret" not in json.dumps(sent[-2:], default=str)


@override_settings(TASKOPS={"REDACT_KWARGS": ["message"]})
def test_a_remade_kwargsrepr_still_hides_what_the_setting_names(
    content_types: None, sent: list[dict[str, Any]]
) -> None:
    question = Question.objects.create(title="Q-title-secret", body="b")

    result = notify.apply_async((), {"question": question, "message": TOKEN}, argsrepr="(none)", queue=IDLE)

    assert recording.flush()
    row = Dispatch.objects.get(task_id=result.id)
    assert (row.redacted, row.kwargs) == (
        True,
        f"{{'question': <testapp.question:{question.pk}>, 'message': <redacted>}}",
    )
    assert sent[-1]["kwargsrepr"] == row.kwargs
    assert "sk-live" not in stored(result.id)


def test_celerys_own_reprs_are_not_a_redaction(content_types: None, sent: list[dict[str, Any]]) -> None:
    question = Question.objects.create(title="Q", body="b")

    result = notify.apply_async((question,), {"message": "hello"}, queue=IDLE)

    assert recording.flush()
    row = Dispatch.objects.get(task_id=result.id)
    assert not row.redacted
    assert json.loads(row.kwargs) == {"message": "hello"}
    assert row.refs.get().object_repr == "Q"
    assert "redacted" not in sent[-1][HEADER]


def test_reprs_are_compared_only_when_the_task_base_cannot_tell(
    content_types: None, sent: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the Task base, with no reprs given, the record knows they are Celery's: no second repr."""
    question = Question.objects.create(title="Q", body="b")
    compared: list[Any] = []
    compare = redaction.given_by_publisher

    def counted(*args: Any) -> frozenset[str]:
        compared.append(args)
        return compare(*args)

    monkeypatch.setattr(redaction, "given_by_publisher", counted)

    plain = notify.apply_async((question,), {"message": "hello"}, queue=IDLE)
    given = notify.apply_async((question,), {"message": TOKEN}, kwargsrepr="{redacted}", queue=IDLE)
    by_name = app.send_task(notify_followers.name, (question,), {"message": "by name"}, queue=IDLE)

    assert recording.flush()
    assert len(compared) == 2  # the publish with reprs given, and the one by name
    rows = {row.task_id: row for row in Dispatch.objects.filter(task_id__in=[plain.id, given.id, by_name.id])}
    assert json.loads(rows[plain.id].kwargs) == {"message": "hello"}
    assert not rows[plain.id].redacted
    assert rows[given.id].redacted
    assert json.loads(rows[by_name.id].kwargs) == {"message": "by name"}
    assert not rows[by_name.id].redacted


@override_settings(TASKOPS={"REDACT_KWARGS": ["message"]})
def test_the_setting_redacts_a_named_kwarg_for_every_task(content_types: None, sent: list[dict[str, Any]]) -> None:
    question = Question.objects.create(title="Q", body="b")

    result = notify.apply_async((question,), {"message": TOKEN}, queue=IDLE)

    assert recording.flush()
    row = Dispatch.objects.get(task_id=result.id)
    assert not row.redacted  # the other arguments are stored as usual
    assert json.loads(row.kwargs) == {"message": {"__type__": "taskops.redacted", "__value__": None}}
    assert "sk-live" not in stored(result.id)
    assert sent[-1]["kwargsrepr"] == "{'message': <redacted>}"  # Celery's own repr, made without it
    by_name = app.send_task(notify_followers.name, (question,), {"message": TOKEN}, queue=IDLE)
    assert recording.flush()
    assert (sent[-1]["kwargsrepr"], Dispatch.objects.get(task_id=by_name.id).redacted) == (
        "{'message': <redacted>}",
        False,
    )
    assert "sk-live" not in stored(by_name.id)
    # Sent again (an exact replay), the marker fails to decode instead of running with a made-up value.
    with pytest.raises(CodecError, match=r"redacted when it was recorded .* cannot be sent again"):
        codec.decode(row.kwargs)


def test_a_retry_keeps_the_publishers_reprs(content_types: None, sent: list[dict[str, Any]]) -> None:
    """Celery's retry makes its reprs from the arguments again: the retry message gets the publisher's back."""
    question = Question.objects.create(title="Q", body="b")
    first = notify.apply_async((question,), {"message": TOKEN}, kwargsrepr="{redacted}", queue=IDLE)
    running: Any = notify_followers
    running.push_request(
        id=first.id, args=[question], kwargs={"message": TOKEN}, argsrepr=sent[-1]["argsrepr"], kwargsrepr="{redacted}"
    )
    running.request.taskops = sent[-1][HEADER]
    task_stack: Any = _state
    task_stack.push_current_task(running)
    try:
        notify.apply_async((question,), {"message": TOKEN}, task_id=first.id, retries=1, queue=IDLE)
    finally:
        task_stack.pop_current_task()
        running.pop_request()

    assert recording.flush()
    assert (sent[-1]["kwargsrepr"], sent[-1][HEADER]["redacted"]) == ("{redacted}", True)
    row = Dispatch.objects.get(task_id=first.id)
    assert (row.retries, row.redacted, row.kwargs) == (1, True, "{redacted}")
    assert "sk-live" not in stored(first.id)


@pytest.mark.parametrize("with_header", [True, False])
def test_a_row_the_worker_makes_stores_no_more_than_the_publishers(with_header: bool) -> None:
    headers: dict[str, Any] = {"argsrepr": "()", "kwargsrepr": "{redacted}"}
    if with_header:
        headers[HEADER] = {"v": 1, "enqueued_at": None, "tx": False, "refs": [], "redacted": True}
    facts = MessageFacts("t", notify_followers.name, headers, args=(), kwargs={"message": TOKEN})

    row = worker_row(facts, timezone.now())

    # Without a taskops header, the reprs are compared with Celery's own, as at publish.
    assert (row["args"], row["kwargs"], row["redacted"]) == ("()", "{redacted}", True)


def test_a_row_the_worker_makes_without_a_header_shows_no_objects_str() -> None:
    """A publisher without taskops header: its argsrepr may be Celery's, with the object's str(); it is hidden."""
    ref = codec.RefPlaceholder(codec.ModelRef("testapp.question", 7))
    headers = {"argsrepr": "(<Question: Q-title-secret>,)", "kwargsrepr": "{redacted}"}
    facts = MessageFacts("t", notify_followers.name, headers, args=(ref,), kwargs={"message": TOKEN})

    row = worker_row(facts, timezone.now())

    assert (row["args"], row["kwargs"], row["redacted"]) == ("<redacted>", "{redacted}", True)
