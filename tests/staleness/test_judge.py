"""The judgement at start: a pure function of the header, the fetched rows and times (no query)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from taskops.models import Drift
from taskops.staleness import judge_start, snapshot
from taskops.wire import HeaderRef, ModelRef, TaskopsHeader
from tests.testapp.models import Book

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def header_for(*rows: tuple[Book, dict[str, str]], tx: bool = False, at: dt.datetime = T0) -> TaskopsHeader:
    refs = tuple(HeaderRef("testapp.book", book.pk, f"args[{i}]", digests) for i, (book, digests) in enumerate(rows))
    return TaskopsHeader(at, tx, refs, digest_key=snapshot.current_key().id)


def fetched(*books: Book, gone: tuple[int, ...] = ()) -> dict[ModelRef, Any]:
    return {ModelRef("testapp.book", book.pk): (None if book.pk in gone else book) for book in books}


def test_each_ref_is_judged_and_the_worst_wins(django_assert_num_queries: Any) -> None:
    same, edited, deleted = (Book.objects.create(title=t) for t in "abc")
    header = header_for(*((book, snapshot.take(book)) for book in (same, edited, deleted)))
    edited.title = "edited"

    with django_assert_num_queries(0):
        verdict = judge_start(header, fetched(same, edited, deleted, gone=(deleted.pk,)), T0 + dt.timedelta(seconds=3))

    assert [(ref.argument, ref.drift, ref.changed_fields) for ref in verdict.refs] == [
        ("args[0]", Drift.UNCHANGED, []),
        ("args[1]", Drift.CHANGED, ["title"]),
        ("args[2]", Drift.MISSING, []),
    ]
    assert verdict.drift == Drift.MISSING
    assert verdict.lag == dt.timedelta(seconds=3)
    assert not verdict.likely_race
    assert [str(ref) for ref in verdict.changed] == [f"testapp.book:{edited.pk}"]


def test_missing_inside_a_transaction_is_a_likely_race() -> None:
    book = Book.objects.create(title="a")
    verdict = judge_start(header_for((book, snapshot.take(book)), tx=True), fetched(book, gone=(book.pk,)), T0)
    assert verdict.likely_race
    assert verdict.refs[0].likely_race


def test_lag_counts_from_the_eta_when_it_is_later() -> None:
    verdict = judge_start(header_for(), {}, T0 + dt.timedelta(seconds=70), eta=T0 + dt.timedelta(seconds=60))
    assert verdict.lag == dt.timedelta(seconds=10)
    assert verdict.drift == Drift.UNCHANGED  # no refs: nothing could be stale


def test_a_ref_not_fetched_stays_pending() -> None:
    book = Book.objects.create(title="a")
    verdict = judge_start(header_for((book, snapshot.take(book))), {}, T0)
    assert verdict.refs[0].drift == Drift.PENDING


def test_without_a_header_only_missing_rows_can_be_told() -> None:
    here, gone = Book.objects.create(title="a"), Book.objects.create(title="b")
    verdict = judge_start(None, fetched(here, gone, gone=(gone.pk,)), T0)
    assert [ref.drift for ref in verdict.refs] == [Drift.PENDING, Drift.MISSING]
    assert verdict.lag is None


def test_an_unreadable_header_judges_nothing() -> None:
    header = TaskopsHeader.from_message({"v": 2})
    verdict = judge_start(header, {}, T0)
    assert verdict.refs == []
    assert verdict.drift == Drift.PENDING
