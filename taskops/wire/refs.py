"""Model references and their bulk resolution.

A ``ModelRef`` names one row by model label and primary key. ``resolve_refs``
fetches any number of them with one query per model class.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import attrs
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db.models import Field, Model

from taskops.wire.errors import CodecError


@attrs.frozen
class ModelRef:
    """One row: ``label`` is ``app_label.modelname`` (lower case), ``pk`` JSON-native."""

    label: str
    pk: Any

    @classmethod
    def for_instance(cls, instance: Model) -> ModelRef:
        return cls(instance._meta.label_lower, json_pk(instance.pk))

    @property
    def model(self) -> type[Model]:
        return apps.get_model(self.label)

    def __str__(self) -> str:
        return f"{self.label}:{self.pk}"


def json_pk(value: Any) -> Any:
    """A primary key as JSON carries it: int and str stay, anything else (UUID) becomes str."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return str(value)
    return value


def resolve_refs(refs: Iterable[ModelRef]) -> dict[ModelRef, Model | None]:
    """Fetch every ref, one query per model class; a row that is gone maps to None."""
    by_label: dict[str, set[Any]] = defaultdict(set)
    for ref in refs:
        by_label[ref.label].add(ref.pk)
    found: dict[ModelRef, Model | None] = {}
    for label, pks in by_label.items():
        model = apps.get_model(label)
        field = model._meta.pk
        assert field is not None  # every concrete model has one
        # The wire pk may be "7" for an int pk: compare in the model's own type.
        wanted = {pk: _python_pk(field, label, pk) for pk in pks}
        rows = model._default_manager.filter(pk__in=list(wanted.values())).order_by()
        by_pk = {json_pk(obj.pk): obj for obj in rows}
        for pk, python_pk in wanted.items():
            found[ModelRef(label, pk)] = by_pk.get(json_pk(python_pk))
    return found


def _python_pk(field: Field[Any, Any], label: str, pk: Any) -> Any:
    try:
        return field.to_python(pk)
    except ValidationError as exc:
        raise CodecError(f"{pk!r} is not a valid pk for {label}") from exc
