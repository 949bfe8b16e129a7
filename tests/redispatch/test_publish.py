"""Publishing a checked re-dispatch, in-process: one call per object, the audit, replays, resuming."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import User
from django.test import override_settings

from taskops import recording
from taskops.models import Dispatch, Redispatch, RedispatchItem
from taskops.redispatch import Options, for_objects, replay, replays, resume, submit
from taskops.redispatch import publish as publish_module
from taskops.redispatch.publish import publish_pending, save, task_id_for
from taskops.wire import HEADER
from tests.factories import make_dispatch
from tests.redispatch.conftest import IDLE
from tests.testapp.models import Book, Question
from tests.testapp.tasks import add, count_books, touch_book

pytestmark = pytest.mark.django_db(transaction=True)


def books(count: int) -> list[Book]:
    return [Book.objects.create(title=f"book {i}") for i in range(count)]


def draft_for(user: User, items: list[Book], **changes: Any) -> Any:
    return for_objects(
        user=user,
        task_name=changes.pop("task_name", touch_book.name),
        model_label="testapp.book",
        reason="rebuild after the import",
        pks=[book.pk for book in items],
        kwargs=changes.pop("kwargs", {"note": "again"}),
        options=Options(queue=IDLE),
        **changes,
    )


def test_one_call_per_object_audited(operator: User, published: list[dict[str, Any]]) -> None:
    items = books(3)

    redispatch = submit(draft_for(operator, items))

    assert (redispatch.outcome, redispatch.published, redispatch.skipped) == (Redispatch.Outcome.DONE, 3, 0)
    task_ids = [task_id_for(redispatch.pk, position) for position in range(3)]
    assert [headers["id"] for headers in published] == task_ids
    assert [headers["taskops_operator"] for headers in published] == [
        {"by": operator.pk, "op": redispatch.pk, "of": None, "at": position} for position in range(3)
    ]
    assert [ref[1] for headers in published for ref in headers[HEADER]["refs"]] == [book.pk for book in items]
    assert recording.flush()
    rows = Dispatch.objects.filter(task_id__in=task_ids).order_by("enqueued_at")
    assert [(row.dispatched_by_id, row.operation_id, row.task_name) for row in rows] == [
        (operator.pk, redispatch.pk, touch_book.name)
    ] * 3
    assert all('"note": "again"' in row.kwargs for row in rows)
    assert set(redispatch.items.values_list("state", flat=True)) == {RedispatchItem.State.PUBLISHED}
    entry = LogEntry.objects.get(object_id=str(redispatch.pk))
    assert (entry.user_id, entry.action_flag) == (operator.pk, ADDITION)
    assert "rebuild after the import" in entry.change_message


def test_a_list_parameter_is_one_call(operator: User, published: list[dict[str, Any]]) -> None:
    items = books(4)
    redispatch = submit(draft_for(operator, items, task_name=count_books.name, kwargs={}))
    assert redispatch.published == 1
    (headers,) = published
    assert [ref[2] for ref in headers[HEADER]["refs"]] == [f"kwargs.books[{i}]" for i in range(4)]


def test_an_object_deleted_before_publishing_is_skipped(operator: User, published: list[dict[str, Any]]) -> None:
    items = books(3)
    draft = draft_for(operator, items)
    items[1].delete()

    redispatch = submit(draft)

    assert (redispatch.outcome, redispatch.published, redispatch.skipped) == (Redispatch.Outcome.PARTIAL, 2, 1)
    assert len(published) == 2
    skipped = redispatch.items.get(state=RedispatchItem.State.SKIPPED)
    assert skipped.note.startswith("objects gone: testapp.book:")


def test_replay_publishes_the_exact_arguments_again(operator: User, published: list[dict[str, Any]]) -> None:
    book = Book.objects.create(title="b")
    source = touch_book.apply_async((book,), {"note": "first", "times": 2}, queue=IDLE)
    other = add.apply_async((1, 2), queue=IDLE)
    assert recording.flush()
    sources = Dispatch.objects.filter(task_id__in=[source.id, other.id])

    redispatch = submit(replay(user=operator, dispatches=sources, reason="again", options=Options(queue=IDLE)))

    assert (redispatch.published, redispatch.skipped) == (1, 1)
    assert recording.flush()
    original = Dispatch.objects.get(task_id=source.id)
    again = Dispatch.objects.get(operation=redispatch)
    assert (again.args, again.kwargs) == (original.args, original.kwargs)
    assert (again.redispatch_of_id, again.dispatched_by_id) == (original.pk, operator.pk)
    assert redispatch.items.get(state=RedispatchItem.State.SKIPPED).note == "task not allowed"


def test_a_replay_whose_arguments_no_longer_fit_is_skipped(operator: User, published: list[dict[str, Any]]) -> None:
    fits = make_dispatch(Book.objects.create(title="a"), task_name=touch_book.name)
    unfit = make_dispatch(task_name=touch_book.name, args=[], kwargs={"pages": 3})  # the task changed since

    redispatch = submit(
        replay(user=operator, dispatches=Dispatch.objects.filter(pk__in=[fits.pk, unfit.pk]), reason="r")
    )

    assert (redispatch.published, redispatch.skipped, redispatch.outcome) == (1, 1, Redispatch.Outcome.PARTIAL)
    note = redispatch.items.get(state=RedispatchItem.State.SKIPPED).note
    assert note.startswith("arguments unfit: ")
    assert "book" in note
    assert len(published) == 1


def test_a_stopped_publish_resumes_without_a_second_task_id(
    operator: User, published: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    items = books(7)
    redispatch = save(draft_for(operator, items))
    real_batch = publish_module.publish_batch
    calls = {"batches": 0}

    def broken_after_two_batches(*args: Any) -> None:
        calls["batches"] += 1
        if calls["batches"] == 3:
            raise ConnectionError("the broker went away")
        real_batch(*args)

    monkeypatch.setattr(publish_module, "publish_batch", broken_after_two_batches)
    with override_settings(TASKOPS={"REDISPATCH_BATCH_SIZE": 2}), pytest.raises(ConnectionError):
        publish_pending(redispatch)
    redispatch.refresh_from_db()
    assert (redispatch.outcome, redispatch.published) == (Redispatch.Outcome.FAILED, 4)
    assert "the broker went away" in redispatch.error

    monkeypatch.setattr(publish_module, "publish_batch", real_batch)
    with override_settings(TASKOPS={"REDISPATCH_BATCH_SIZE": 2}):
        publish_pending(redispatch)

    redispatch.refresh_from_db()
    assert (redispatch.outcome, redispatch.published, redispatch.error) == (Redispatch.Outcome.DONE, 7, "")
    ids = [headers["id"] for headers in published]
    assert sorted(ids) == sorted(task_id_for(redispatch.pk, position) for position in range(7))  # each once


def test_a_broker_that_is_down_leaves_a_failed_audited_redispatch_to_resume(
    operator: User, published: list[dict[str, Any]], broker_down: None
) -> None:
    redispatch = submit(draft_for(operator, books(3)))  # does not raise: the caller shows what happened

    assert (redispatch.outcome, redispatch.published) == (Redispatch.Outcome.FAILED, 0)
    assert redispatch.error.startswith("OperationalError")
    assert LogEntry.objects.filter(object_id=str(redispatch.pk), action_flag=ADDITION).count() == 1
    assert published == []

    assert resume(redispatch, operator) is False  # the fan-out cannot be queued either: still stopped, and says why
    redispatch.refresh_from_db()
    assert redispatch.outcome == Redispatch.Outcome.FAILED
    assert redispatch.error.startswith("the fan-out could not be queued: OperationalError")


@override_settings(TASKOPS={"REDISPATCH_BACKGROUND_OVER": 2})
def test_a_large_selection_goes_to_the_background(
    operator: User, published: list[dict[str, Any]], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    items = books(3)
    with django_capture_on_commit_callbacks(execute=True):
        redispatch = submit(draft_for(operator, items))
    assert redispatch.outcome == Redispatch.Outcome.QUEUED
    assert [headers["task"] for headers in published] == ["taskops.redispatch.fan_out"]


def test_a_redacted_dispatch_is_never_replayed(operator: User, published: list[dict[str, Any]]) -> None:
    book = Book.objects.create(title="b")
    secret = touch_book.apply_async((book,), {"note": "API_TOKEN=sk-live-1"}, kwargsrepr="{redacted}", queue=IDLE)
    assert recording.flush()
    source = Dispatch.objects.get(task_id=secret.id)
    assert source.redacted

    redispatch = submit(replay(user=operator, dispatches=Dispatch.objects.filter(pk=source.pk), reason="again"))

    assert (redispatch.published, redispatch.skipped) == (0, 1)
    assert redispatch.items.get().note == "redacted"
    assert len(published) == 1  # only the original


@override_settings(TASKOPS={"REDACT_KWARGS": ["note"]})
def test_a_dispatch_with_a_redacted_kwarg_is_skipped_and_the_rest_published(
    operator: User, published: list[dict[str, Any]]
) -> None:
    book = Book.objects.create(title="b")
    plain = touch_book.apply_async((book,), {"times": 2}, queue=IDLE)
    secret = touch_book.apply_async((book,), {"note": "API_TOKEN=sk-live-1"}, queue=IDLE)
    assert recording.flush()
    sources = Dispatch.objects.filter(task_id__in=[plain.id, secret.id])
    assert "taskops.redacted" in sources.get(task_id=secret.id).kwargs  # the record kept the marker, not the value

    draft = replay(user=operator, dispatches=sources, reason="again", options=Options(queue=IDLE))
    redispatch = submit(draft)

    assert draft.skips == {"kwarg redacted": 1}
    assert (redispatch.outcome, redispatch.published, redispatch.skipped) == (Redispatch.Outcome.PARTIAL, 1, 1)
    skipped = redispatch.items.get(state=RedispatchItem.State.SKIPPED)
    assert skipped.note == "kwarg redacted: kwargs.note"
    assert skipped.target == str(sources.get(task_id=secret.id).pk)
    assert [headers["taskops_operator"]["of"] for headers in published[2:]] == [sources.get(task_id=plain.id).pk]
    assert "API_TOKEN" not in str(published)


def test_replay_skips_are_counted_over_the_whole_selection_a_chunk_at_a_time(
    operator: User, monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Callable[..., Any]
) -> None:
    kept, gone = Book.objects.create(title="kept"), Book.objects.create(title="gone")
    question = Question.objects.create(title="q", body="b")
    made = [make_dispatch(book, question, task_name=touch_book.name) for book in (kept, gone, kept, gone, kept)]
    made.append(make_dispatch(kept, task_name=add.name))  # task not allowed: not read for its objects
    gone.delete()
    monkeypatch.setattr(replays, "CHUNK", 2)
    selection = Dispatch.objects.filter(pk__in=[dispatch.pk for dispatch in made])  # what this test made, only

    with django_assert_num_queries(1 + 3 * 2):  # the stream; per chunk of 2, one query per model (books, questions)
        skips = replays.replay_skips(selection)

    assert skips == {"objects gone": 2, "task not allowed": 1}
