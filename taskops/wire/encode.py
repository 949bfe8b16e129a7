"""Encoding: kombu's JSON encoder, taught model instances, QuerySets and attrs objects.

The encoders are plugged into ``kombu.utils.json`` (:func:`taskops.wire.install`),
so ``task_serializer = "json"`` and every JSON consumer keep working. A
QuerySet costs one ``values_list("pk")`` query unless it was evaluated (the
recorder evaluates it at publish, so that the rows it snapshots are the rows
sent). What cannot be sent raises :class:`~taskops.wire.errors.CodecError`
(which kombu wraps in its ``EncodeError``; the Task base refuses unsendable
instances before that, with the ``CodecError`` itself).
"""

from __future__ import annotations

from typing import Any

import attrs
from django.db.models import Model, QuerySet
from django.db.models.query import ModelIterable
from kombu.utils import json as kombu_json

from taskops.wire.envelopes import ATTRS, MODEL, MODELS, envelope
from taskops.wire.errors import CodecError
from taskops.wire.limits import current_limits
from taskops.wire.refs import json_pk
from taskops.wire.registry import attrs_registry, default_attrs_name
from taskops.wire.structure import converter


class _AttrsInstanceMeta(type):
    def __instancecheck__(cls, instance: Any) -> bool:
        return attrs.has(type(instance))


class AttrsInstance(metaclass=_AttrsInstanceMeta):
    """Matches any attrs instance: kombu's encoder finds encoders by ``isinstance``."""


def check_sendable(instance: Model) -> None:
    """Raise :class:`CodecError` unless ``instance`` is a saved row that may travel.

    "Saved" is Django's own notion (``_state.adding`` is False once the instance
    was saved or loaded): a pk filled by a field default (a UUID) is not a row.
    """
    if instance._state.adding:
        raise CodecError(
            f"cannot send an unsaved {instance._meta.label} instance: save it first, "
            "or send one the database returned (e.g. from .get())"
        )
    if isinstance(instance.pk, tuple):
        raise CodecError(f"cannot send a {instance._meta.label} instance: composite primary keys are not supported")
    _check_allowed(instance._meta.label_lower)


def encode_model(instance: Model) -> dict[str, Any]:
    check_sendable(instance)
    return envelope(MODEL, {"model": instance._meta.label_lower, "pk": json_pk(instance.pk)})


def encode_queryset(queryset: QuerySet[Any]) -> Any:
    if not issubclass(queryset._iterable_class, ModelIterable):
        return list(queryset)  # .values() / .values_list(): plain data
    label = queryset.model._meta.label_lower
    _check_allowed(label)
    if queryset._result_cache is not None:  # already evaluated: no query
        pks = [json_pk(obj.pk) for obj in queryset._result_cache]
    else:
        pks = [json_pk(pk) for pk in queryset.values_list("pk", flat=True)]
    return envelope(MODELS, {"model": label, "pks": pks})


def _check_allowed(label: str) -> None:
    allowed = current_limits().allowed_models
    if allowed is not None and label not in allowed:
        raise CodecError(f"cannot send a {label} instance: the model is not in TASKOPS['ALLOWED_MODELS']")


def encode_attrs(obj: Any) -> dict[str, Any]:
    cls = type(obj)
    name = attrs_registry.name_of(cls)
    if name in attrs_registry.conflicts:
        raise CodecError(f"cannot send a {default_attrs_name(cls)}: its name {name!r} is registered twice")
    if name is None:
        raise CodecError(
            f"cannot send a {default_attrs_name(cls)}: the class is not registered "
            "(decorate it with @taskops.register, list it in TASKOPS['ATTRS_CLASSES'] "
            "or name it in a task's parameter annotations)"
        )
    return envelope(ATTRS, {"class": name, "data": converter.unstructure(obj)})


def dumps(value: Any) -> str:
    """Encode ``value`` exactly as a task message would carry it."""
    return kombu_json.dumps(value)
