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

from collections.abc import Callable
from typing import Any, NoReturn

import attrs
from django.db.models import Model, QuerySet
from django.db.models.query import ModelIterable
from kombu.utils import json as kombu_json

from taskops.wire.envelopes import ATTRS, MODEL, MODELS, envelope
from taskops.wire.errors import CodecError
from taskops.wire.limits import sendable_label
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
    encode_model(instance)


def encode_model(instance: Model) -> dict[str, Any]:
    # Once per ref, so the checks that depend only on the model (its label, whether
    # it may travel) are read from a per-model cache (:func:`sendable_label`).
    if instance._state.adding:
        raise CodecError(
            f"cannot send an unsaved {instance._meta.label} instance: save it first, "
            "or send one the database returned (e.g. from .get())"
        )
    pk = instance.pk
    if type(pk) is not int:  # the usual pk takes no further look
        if isinstance(pk, tuple):
            raise CodecError(f"cannot send a {instance._meta.label} instance: composite primary keys are not supported")
        pk = json_pk(pk)
    label = sendable_label(type(instance))
    if label is None:
        _refuse(instance._meta.label_lower)
    return {"__type__": MODEL, "__value__": {"model": label, "pk": pk}}


def encode_queryset(queryset: QuerySet[Any]) -> Any:
    if not issubclass(queryset._iterable_class, ModelIterable):
        return list(queryset)  # .values() / .values_list(): plain data
    model: type[Model] = queryset.model
    label = sendable_label(model)
    if label is None:
        _refuse(model._meta.label_lower)
    if queryset._result_cache is not None:  # already evaluated: no query
        pks = [json_pk(obj.pk) for obj in queryset._result_cache]
    else:
        pks = [json_pk(pk) for pk in queryset.values_list("pk", flat=True)]
    return envelope(MODELS, {"model": label, "pks": pks})


def _refuse(label: str) -> NoReturn:
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


#: Type -> its encoder (None: kombu's rules), decided once per type.
_ENCODER_OF_TYPE: dict[type, Callable[[Any], Any] | None] = {}


def _encoder_of(cls: type) -> Callable[[Any], Any] | None:
    """What encodes instances of ``cls``, in the order kombu's encoder would find it."""
    if hasattr(cls, "__json__") or issubclass(cls, kombu_json.textual_types):
        return None  # kombu looks at these first
    if issubclass(cls, QuerySet):
        return encode_queryset
    if issubclass(cls, Model):
        return encode_model
    if attrs.has(cls):
        return encode_attrs
    return None


class Encoder(kombu_json.JSONEncoder):
    """kombu's JSON encoder, finding taskops' encoders by the value's type in one dict lookup.

    kombu's own looks for an encoder with ``isinstance`` against every
    registered type in turn (datetime, date, time, Decimal, UUID, then
    taskops'), for every model instance sent; the result is the same.
    """

    def default(self, o: Any) -> Any:
        cls = type(o)
        try:
            encoder = _ENCODER_OF_TYPE[cls]
        except KeyError:
            encoder = _ENCODER_OF_TYPE.setdefault(cls, _encoder_of(cls))
        if encoder is None:
            return super().default(o)
        return encoder(o)


def dumps(value: Any) -> str:
    """Encode ``value`` exactly as a task message carries it (the ``json`` serializer kombu uses)."""
    return kombu_json.dumps(value, cls=Encoder)
