"""The form's typed inputs (``Decimal``, ``datetime``, ``UUID``, JSON when unannotated) and what the task gets."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery.signals import after_task_publish
from django import forms
from django.test import Client

from taskops import recording
from taskops.models import Dispatch, Redispatch
from taskops.wire import loads
from tests.admin.redispatch.conftest import FORM, HTMX, IDLE
from tests.testapp.models import Book
from tests.testapp.tasks import price_book

pytestmark = pytest.mark.django_db(transaction=True)

BATCH = uuid.UUID("9b2f4c1e-0d7a-4e55-8f3b-2a6c1d0e9f47")


@pytest.fixture
def sent_kwargs(published: list[Any]) -> Iterator[list[dict[str, Any]]]:
    """The keyword arguments of every message published during the test, as the task gets them."""
    sent: list[dict[str, Any]] = []

    def capture(body: Any = None, **kwargs: Any) -> None:
        sent.append(dict(body[1]))

    after_task_publish.connect(capture, weak=False, dispatch_uid="tests.typed_inputs.capture")
    yield sent
    after_task_publish.disconnect(dispatch_uid="tests.typed_inputs.capture")


def price_data(book: Book, **changes: Any) -> dict[str, Any]:
    data = {
        "task": price_book.name,
        "model": "testapp.book",
        "arg-book": str(book.pk),
        "arg-price": "12.345",
        "arg-at_0": "2026-03-01",
        "arg-at_1": "14:30:05",
        "arg-batch": str(BATCH),
        "arg-extra": '{"tags": ["a", 1], "note": null}',
        "queue": IDLE,
        "reason": "the prices were wrong",
        **changes,
    }
    return data


def test_each_annotation_gets_its_typed_input(operator_client: Client) -> None:
    form = operator_client.get(FORM, {"task": price_book.name}).context["form"]

    types = {name: type(form.fields[name]) for name in ("arg-price", "arg-at", "arg-batch", "arg-extra")}
    assert types == {
        "arg-price": forms.DecimalField,
        "arg-at": forms.SplitDateTimeField,
        "arg-batch": forms.UUIDField,
        "arg-extra": forms.JSONField,
    }


def test_the_published_call_gets_exact_typed_values(operator_client: Client, sent_kwargs: list[dict[str, Any]]) -> None:
    book = Book.objects.create(title="b")
    preview = operator_client.post(FORM, price_data(book)).content.decode()
    ticket = re.search(r'name="confirm" value="([^"]+)"', preview)
    assert ticket, preview

    operator_client.post(FORM, {"confirm": ticket.group(1)})

    (kwargs,) = sent_kwargs
    expected = {
        "price": decimal.Decimal("12.345"),
        "at": dt.datetime(2026, 3, 1, 14, 30, 5, tzinfo=dt.UTC),
        "batch": BATCH,
        "extra": {"tags": ["a", 1], "note": None},
    }
    assert {name: kwargs[name] for name in expected} == expected
    assert kwargs["book"] == book
    assert type(kwargs["price"]) is decimal.Decimal  # exact, not a float
    assert str(kwargs["price"]) == "12.345"
    assert kwargs["at"].utcoffset() == dt.timedelta(0)  # aware
    assert recording.flush()
    stored = loads(Dispatch.objects.get(operation=Redispatch.objects.get()).kwargs)
    assert {name: stored[name] for name in expected} == expected  # and so they travel


def test_malformed_json_is_an_error_at_its_input(operator_client: Client, published: list[Any]) -> None:
    book = Book.objects.create(title="b")

    response = operator_client.post(FORM, price_data(book, **{"arg-extra": '{"tags": [1,'}), headers=HTMX)

    context = response.context_data
    assert context is not None
    assert context["form"].errors == {"arg-extra": ["Enter a valid JSON."]}
    assert "Enter a valid JSON." in response.content.decode()  # in the partial htmx swaps in
    assert context["preview"] is None
    assert published == []
    assert not Redispatch.objects.exists()
