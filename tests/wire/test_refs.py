"""Bulk resolution of model references: one query per model class."""

from __future__ import annotations

from typing import Any

import pytest

from taskops.wire import CodecError, ModelRef, json_pk, resolve_refs
from tests.testapp.models import Book, Country, Tag

pytestmark = pytest.mark.django_db


def test_json_pk_keeps_ints_and_strings_and_stringifies_the_rest() -> None:
    tag = Tag(name="t")

    assert [json_pk(7), json_pk("FR"), json_pk(tag.pk)] == [7, "FR", str(tag.pk)]


def test_one_query_per_model_class(django_assert_num_queries: Any) -> None:
    books = [Book.objects.create(title=f"b{i}") for i in range(3)]
    tags = [Tag.objects.create(name=f"t{i}") for i in range(2)]
    country = Country.objects.create(code="DE", name="Germany")
    refs = [ModelRef.for_instance(obj) for obj in [*books, *tags, country]]

    with django_assert_num_queries(3):
        found = resolve_refs(refs)

    assert [found[ref] for ref in refs] == [*books, *tags, country]


def test_missing_rows_map_to_none() -> None:
    book = Book.objects.create(title="b")

    found = resolve_refs([ModelRef("testapp.book", book.pk), ModelRef("testapp.book", book.pk + 1000)])

    assert found == {ModelRef("testapp.book", book.pk): book, ModelRef("testapp.book", book.pk + 1000): None}


def test_a_pk_in_string_form_finds_its_row() -> None:
    book = Book.objects.create(title="b")

    assert resolve_refs([ModelRef("testapp.book", str(book.pk))]) == {ModelRef("testapp.book", str(book.pk)): book}


def test_an_unreadable_pk_is_a_codec_error() -> None:
    with pytest.raises(CodecError, match=r"'nope' is not a valid pk for testapp\.tag"):
        resolve_refs([ModelRef("testapp.tag", "nope")])
