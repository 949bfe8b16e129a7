"""One row named by a model and a primary key typed by a user or stored as text.

- ``python_pk``: text as a value of the model's pk, or None when it cannot be
  one on this database (wrong type, out of the column's range, too long, a
  NUL character): a lookup with it would fail, so nothing is looked up.
- ``stored_pk``: the text taskops stores in ``ObjectRef.object_pk`` for the
  same pk (``42``, a UUID in lower case with dashes), whatever form was typed.
- ``same_row_content_types``: multi-table inheritance gives one row several
  models (``Place`` and its child ``Restaurant`` share the pk); a dispatch
  recorded under any of them is about the same row.

No query, except for content types on a cold content-type cache.
"""

from __future__ import annotations

import functools
from typing import Any

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db.models import Field, Model

from taskops.wire import json_pk

#: The one character PostgreSQL cannot hold or compare in text.
NUL = "\x00"


def pk_field(model: type[Model]) -> Field[Any, Any]:
    """The field that holds ``model``'s pk values (through a child's link to its parent)."""
    field = model._meta.pk
    assert field is not None  # every concrete model has one
    while field.remote_field is not None:
        field = field.target_field  # type: ignore[attr-defined]
    return field


def python_pk(model: type[Model], text: str) -> Any | None:
    """``text`` as a value of ``model``'s pk, or None when no row can have it."""
    if NUL in text:
        return None
    field = pk_field(model)
    try:
        value = field.to_python(text)
        field.run_validators(value)
    except (ValidationError, ValueError, TypeError, OverflowError):
        return None
    return value


def stored_pk(model: type[Model] | None, text: str) -> str | None:
    """The ``object_pk`` text a ref to ``model``'s row ``text`` is stored with; None when no row can have it.

    A model that is no longer installed keeps the text as it is.
    """
    if model is None:
        return None if NUL in text else text
    value = python_pk(model, text)
    return None if value is None else str(json_pk(value))


def pk_chain(model: type[Model]) -> tuple[type[Model], ...]:
    """``model`` and the parents whose pk it shares, nearest first (multi-table inheritance)."""
    chain = [model._meta.concrete_model or model]
    while True:
        pk = chain[-1]._meta.pk
        if pk is None or pk.remote_field is None or not getattr(pk.remote_field, "parent_link", False):
            return tuple(chain)
        chain.append(pk.remote_field.model)


@functools.cache
def same_row_models(model: type[Model]) -> tuple[type[Model], ...]:
    """Every concrete model whose rows share their pk with ``model``'s: its parents and its children."""
    concrete = model._meta.concrete_model or model
    children = [
        other
        for other in apps.get_models()
        if not other._meta.proxy and other is not concrete and concrete in pk_chain(other)[1:]
    ]
    return (*pk_chain(concrete), *children)


def content_type_for_id(text: str) -> ContentType | None:
    """The content type with id ``text`` (cached by Django), or None when there is none."""
    content_type_id = python_pk(ContentType, text)
    if content_type_id is None:
        return None
    try:
        return ContentType.objects.get_for_id(content_type_id)
    except ContentType.DoesNotExist:
        return None


def same_row_content_types(content_type: ContentType) -> list[ContentType]:
    """The content types a ref to this content type's row may be recorded under (itself first)."""
    model = content_type.model_class()
    if model is None:
        return [content_type]
    family = ContentType.objects.get_for_models(*same_row_models(model)).values()
    return [content_type, *(other for other in family if other.pk != content_type.pk)]
