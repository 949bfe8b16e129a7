"""The form's inputs as a task's signature asks for them, and the values they give the task."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest
from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.test import RequestFactory, override_settings

from taskops.admin.redispatch.fields import (
    FieldFactory,
    ObjectPksField,
    Picker,
    argument,
    picker_for,
    spec_for,
    specs,
)
from taskops.admin.redispatch.form import refuse_envelopes
from taskops.admin.visibility import Visibility
from taskops.redispatch.signature import Kind
from tests.testapp.models import Book, Document, Question, Tag
from tests.testapp.reports import ReviewRequest
from tests.testapp.tasks import count_books, review_question, touch_book

pytestmark = pytest.mark.django_db


def test_a_task_with_a_model_an_attrs_object_and_an_int() -> None:
    question, review, copies = specs(review_question)

    assert (question.name, question.kind, question.type_name, question.required) == (
        "arg-question",
        Kind.MODEL,
        "Question",
        True,
    )
    assert [(c.name, c.type_name, c.required, c.default) for c in review.children] == [
        ("arg-review-reviewer", "str", True, None),
        ("arg-review-due", "date", True, None),
        ("arg-review-answer", "Answer | None", False, None),
        ("arg-review-urgent", "bool", False, False),
    ]
    assert (copies.kind, copies.type_name) == (Kind.SCALAR, "int")
    assert specs(count_books)[0].type_name == "list[Book]"
    assert specs(touch_book)[2].default == 1


@attrs.frozen
class Inner:
    when: dt.datetime
    tags: list[str] = attrs.Factory(list)


@attrs.frozen
class Outer:
    inner: Inner
    extra: dict[str, Any]


def test_nested_attrs_get_inputs_a_factorys_default_is_made_at_the_call() -> None:
    outer = spec_for(("o",), Kind.ATTRS, Outer, True, None, False)
    inner, extra = outer.children

    assert [c.name for c in inner.children] == ["arg-o-inner-when", "arg-o-inner-tags"]
    assert inner.children[1].required is False
    assert inner.children[1].default is None
    assert extra.kind is Kind.JSON
    when = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)
    given, value = argument(outer, {"arg-o-inner-when": when, "arg-o-inner-tags": None, "arg-o-extra": {"a": 1}})
    assert given
    assert value == Outer(Inner(when), {"a": 1})


def test_empty_inputs_leave_the_default_or_give_none() -> None:
    _question, review, copies = specs(review_question)
    cleaned = {
        "arg-review-reviewer": "ada",
        "arg-review-due": dt.date(2026, 5, 1),
        "arg-review-answer": None,
        "arg-review-urgent": False,
    }

    assert argument(review, cleaned) == (True, ReviewRequest("ada", dt.date(2026, 5, 1)))
    assert argument(copies, {"arg-copies": 0}) == (True, 0)
    assert argument(specs(touch_book)[1], {"arg-note": ""}) == (False, None)  # the task's default: ""


@pytest.mark.parametrize(
    "value",
    [
        {"__type__": "taskops.model", "__value__": {"model": "auth.user", "pk": 1}},
        [1, {"a": [{"__type__": "taskops.model"}]}],
    ],
)
def test_json_may_not_smuggle_envelopes(value: Any) -> None:
    with pytest.raises(ValidationError, match="may not hold envelopes"):
        refuse_envelopes(value)


def test_plain_json_passes() -> None:
    refuse_envelopes({"type": "x", "items": [1, 2, {"__value__": 3}]})


def test_typed_pks_clean_to_the_objects() -> None:
    books = [Book.objects.create(title=str(i)) for i in range(3)]
    many = ObjectPksField(Book, many=True)

    assert many.clean(f"{books[2].pk}, {books[0].pk}\n{books[2].pk}") == [books[2], books[0]]
    with pytest.raises(ValidationError, match="No book with primary key 999999"):
        many.clean("999999")
    with pytest.raises(ValidationError, match="Not a primary key of book: abc"):
        many.clean("abc")
    with pytest.raises(ValidationError, match="Type one primary key"):
        ObjectPksField(Book, many=False).clean(f"{books[0].pk} {books[1].pk}")
    with pytest.raises(ValidationError, match="You may not view books"):
        ObjectPksField(Book, many=True, refusal="You may not view books.").clean(str(books[0].pk))


def test_how_objects_are_chosen_and_why(make_user: Any) -> None:
    request = RequestFactory().get("/")
    request.user = make_user("op", "testapp.view_question", "testapp.view_book", "testapp.view_document")
    visibility = Visibility(admin.site, request)

    def picker(model: Any) -> Picker:
        return picker_for(admin.site, request, visibility, model)

    assert picker(Question) is Picker.SEARCH
    assert picker(Book) is Picker.NOT_REGISTERED
    assert picker(Document) is Picker.NO_SEARCH_FIELDS
    assert picker(Tag) is Picker.NOT_VIEWABLE  # registered, searchable by nobody here: no view permission
    with override_settings(TASKOPS={"ALLOWED_MODELS": ["testapp.question"]}):
        assert picker(Book) is Picker.NOT_ALLOWED
    field = FieldFactory(admin.site, request, visibility, "/search/").field(specs(touch_book)[0])
    assert isinstance(field, ObjectPksField)
    assert "type their primary keys" in str(field.help_text)
    picked = FieldFactory(admin.site, request, visibility, "/search/").field(specs(review_question)[0])
    assert isinstance(picked, forms.ModelChoiceField)
    assert picked.widget.get_url() == "/search/"
