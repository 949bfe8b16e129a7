"""One row named by a model and a primary key typed by a user or stored as text.

- ``python_pk``: text as a value of the model's pk, or None when it cannot be
  one on this database (wrong type, out of the column's range, too long, a
  NUL character): a lookup with it would fail, so nothing is looked up.
- ``stored_pk``: the text taskops stores in ``ObjectRef.object_pk`` for the
  same pk (``42``, a UUID in lower case with dashes), whatever form was typed.
- ``content_type_for_id``: a content type id from a URL, or None.

No query, except for content types on a cold content-type cache.
"""

from __future__ import annotations

from typing import Any

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


def content_type_for_id(text: str) -> ContentType | None:
    """The content type with id ``text`` (cached by Django), or None when there is none."""
    content_type_id = python_pk(ContentType, text)
    if content_type_id is None:
        return None
    try:
        return ContentType.objects.get_for_id(content_type_id)
    except ContentType.DoesNotExist:
        return None
