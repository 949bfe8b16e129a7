"""What a publish records of its refs: QuerySets, refs a worker sends again, and unsaved instances."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db.models import Model
from kombu.exceptions import EncodeError

from taskops import recording
from taskops import wire as codec
from taskops.models import Dispatch, ObjectRef
from taskops.staleness import snapshot
from taskops.wire import HEADER, CodecError
from tests.celery_app import app
from tests.recording.conftest import IDLE
from tests.testapp.models import Book, Question, Tag
from tests.testapp.tasks import count_refs, read_body


def refs_of(task_id: str) -> list[tuple[str, str, str, dict[str, str]]]:
    refs = ObjectRef.objects.filter(dispatch__task_id=task_id).order_by("pk")
    return [(ref.argument, ref.object_pk, ref.object_repr, ref.digests) for ref in refs]


def test_an_unevaluated_queryset_records_its_rows_in_order_with_one_query(
    content_types: None, sent: list[dict[str, Any]], django_assert_num_queries: Any
) -> None:
    books = [Book.objects.create(title=f"{pages} pages", pages=pages) for pages in (5, 30, 10, 20)]
    Book.objects.create(title="too thin", pages=1)
    queryset = Book.objects.filter(pages__gte=5).order_by("-pages")
    by_pages = sorted(books, key=lambda book: -book.pages)

    # One query in all: Celery's argsrepr, the snapshots and the encoder read the same rows.
    with recording.writer_paused(), django_assert_num_queries(1):
        result = count_refs.apply_async(([], queryset), queue=IDLE)

    assert recording.flush()
    assert refs_of(result.id) == [
        (f"args[1][{index}]", str(book.pk), book.title, snapshot.take(book)) for index, book in enumerate(by_pages)
    ]
    row = Dispatch.objects.get(task_id=result.id)
    assert row.ref_count == 4
    envelope = {"__type__": "taskops.models", "__value__": {"model": "testapp.book", "pks": [b.pk for b in by_pages]}}
    assert json.loads(row.args) == [[], envelope]
    assert [ref[1] for ref in sent[-1][HEADER]["refs"]] == [book.pk for book in by_pages]
    assert sent[-1]["argsrepr"].startswith("([], <QuerySet [<Book: 30 pages>, <Book: 20 pages>")


def test_a_queryset_in_kwargs_and_through_send_task_records_its_rows(
    content_types: None, sent: list[dict[str, Any]]
) -> None:
    book = Book.objects.create(title="only", pages=3)

    kwargs_result = count_refs.apply_async(([],), {"books": Book.objects.all()}, queue=IDLE)
    sent_result = app.send_task(count_refs.name, args=([], Book.objects.all()), queue=IDLE)

    assert recording.flush()
    assert refs_of(kwargs_result.id) == [("kwargs.books[0]", str(book.pk), "only", snapshot.take(book))]
    assert refs_of(sent_result.id) == [("args[1][0]", str(book.pk), "only", snapshot.take(book))]


def test_refs_a_worker_sends_again_are_snapshotted_at_that_publish(
    content_types: None, sent: list[dict[str, Any]], django_assert_num_queries: Any
) -> None:
    """A chain's next step, a chord body, a retry: the arguments are decoded placeholders, rows not in memory."""
    questions = [Question.objects.create(title=f"q{i}", body="b") for i in range(3)]
    book = Book.objects.create(title="b")
    decoded = codec.loads(codec.dumps([questions, [book]]))
    Question.objects.filter(pk=questions[0].pk).update(title="edited since the first publish")
    questions[0].refresh_from_db()

    with recording.writer_paused(), django_assert_num_queries(2):  # one per model class
        result = count_refs.apply_async(decoded, queue=IDLE)

    assert recording.flush()
    assert refs_of(result.id) == [
        *((f"args[0][{i}]", str(q.pk), q.title, snapshot.take(q)) for i, q in enumerate(questions)),
        ("args[1][0]", str(book.pk), "b", snapshot.take(book)),
    ]
    header = sent[-1][HEADER]
    assert header["kid"] == snapshot.current_key().id
    assert [ref[3] for ref in header["refs"]] == [snapshot.take(q) for q in questions] + [snapshot.take(book)]


@pytest.mark.parametrize(
    "unsaved",
    [
        lambda: Tag(name="its UUID pk comes from a default"),
        lambda: Book(title="no pk yet"),
        lambda: Book(pk=10**6, title="a pk, but never saved nor loaded"),
    ],
)
def test_an_unsaved_instance_is_refused_at_the_call_and_nothing_is_published(
    content_types: None, sent: list[dict[str, Any]], unsaved: Callable[[], Model]
) -> None:
    errors = recording.error_count()

    with pytest.raises(CodecError, match=r"cannot send an unsaved testapp\.(Tag|Book) instance: save it first"):
        read_body.apply_async((unsaved(),), queue=IDLE)

    assert recording.flush()
    assert sent == []  # after_task_publish never fired: nothing reached the broker
    assert not Dispatch.objects.exists()
    assert recording.error_count() == errors  # the caller's mistake, not a recorder failure


def test_sent_by_name_an_unsaved_instance_is_neither_recorded_nor_published(
    content_types: None, sent: list[dict[str, Any]]
) -> None:
    """``app.send_task`` skips the Task base: kombu's encoder refuses it, and the recorder records nothing."""
    errors = recording.error_count()

    with pytest.raises(EncodeError, match=r"cannot send an unsaved testapp\.Tag instance"):
        app.send_task(read_body.name, args=(Tag(name="never saved"),), queue=IDLE)

    assert recording.flush()
    assert sent == []
    assert not Dispatch.objects.exists()
    assert recording.error_count() == errors
