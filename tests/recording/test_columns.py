"""One declaration of who writes which column; the row builders follow it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db.models import Model
from django.utils import timezone

from taskops.recording.columns import DECLARED, DISPATCH, REF, Ownership
from taskops.recording.records import build_record, start_ref_rows, worker_row
from taskops.staleness import judge_start
from taskops.wire import ModelRef
from tests.testapp.models import Book


@pytest.mark.parametrize(("model", "ownership"), DECLARED)
def test_every_column_is_declared(model: type[Model], ownership: Ownership) -> None:
    columns = {field.attname for field in model._meta.concrete_fields if not field.primary_key}
    assert ownership.all() == columns
    # A column the publisher owns is never taken from a worker's start, and the reverse.
    assert not set(ownership.publisher) & set(ownership.start)


@pytest.mark.django_db
def test_the_builders_write_what_their_side_owns() -> None:
    book = Book.objects.create(title="t")
    record = build_record(([book], {}, {}), {"id": "columns-test", "task": "t"}, "", "q")
    header = record.header()
    verdict = judge_start(header, {ModelRef("testapp.book", book.pk): book}, timezone.now())
    request = SimpleNamespace(
        id="columns-test",
        args=[],
        kwargs={},
        delivery_info={},
        eta=None,
        expires=None,
        retries=0,
        parent_id=None,
        root_id=None,
        group=None,
    )
    from_headers = worker_row(SimpleNamespace(request=request, name="t"), header, verdict)

    # The publisher's row: the key, its own columns, and the state and retries its insert starts with.
    assert set(record.row()) == {*DISPATCH.key, *DISPATCH.publisher, "state", "retries"}
    assert set(record.ref_rows()[0]) == {*REF.key, *REF.publisher} - {"dispatch_id"}
    # The worker's row from the headers: what the publisher's would hold, marked as the worker's.
    assert set(from_headers) == set(record.row()) - {"state"}
    assert set(start_ref_rows(verdict)[0]) == {"argument", "content_type_id", "object_pk", "digests", *REF.start}
