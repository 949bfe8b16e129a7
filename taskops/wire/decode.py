"""Decoding: kombu's ``application/json`` decoder, replaced by one that never
raises for a semantic problem and never touches the database.

The worker decodes in its main process and drops a message whose decoder
raises, so an unknown class, a disallowed model or a payload over the limits
becomes an :class:`~taskops.wire.envelopes.Invalid` placeholder, and the Task
base raises :class:`~taskops.wire.errors.CodecError` when the task starts.
Model envelopes become placeholders, fetched later (:func:`taskops.wire.resolve`).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import functools
import json
import math
import uuid
from collections.abc import Callable
from typing import Any

import attrs
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import IntegerField, Model

from taskops.wire.envelopes import (
    ATTRS,
    INVALID,
    MODEL,
    MODELS,
    REDACTED,
    REDACTED_ERROR,
    AttrsPlaceholder,
    Invalid,
    RefListPlaceholder,
    RefPlaceholder,
)
from taskops.wire.errors import CodecError, short
from taskops.wire.limits import Limits, current_limits, installed_model, too_long, within_limits
from taskops.wire.refs import ModelRef, json_pk
from taskops.wire.registry import attrs_registry
from taskops.wire.walk import collect_refs


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _decode_uuid(value: Any) -> Any:
    if not isinstance(value, dict) or value.keys() != {"hex"}:
        raise ValueError("expected {'hex': str}")
    return uuid.UUID(hex=_text(value["hex"]))


#: kombu's own markers, decoded by functions that check their input's type.
_KOMBU_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": lambda value: dt.datetime.fromisoformat(_text(value)),
    "date": lambda value: dt.datetime.fromisoformat(_text(value)).date(),
    "time": lambda value: dt.time.fromisoformat(_text(value)),
    "decimal": lambda value: decimal.Decimal(_text(value)),
    "uuid": _decode_uuid,
    "bytes": lambda value: _text(value).encode("utf-8"),
    "base64": lambda value: base64.b64decode(_text(value).encode("ascii"), validate=True),
}


#: What ``dict.get`` gives for a key that is not there (``None`` may be a marker from the wire).
_ABSENT = object()


class _Decoder:
    """The ``object_hook`` of one ``loads`` call (it counts refs per message)."""

    __slots__ = ("limits", "refs_left")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.refs_left = limits.max_refs

    def hook(self, obj: dict[str, Any]) -> Any:
        # Called for every JSON object of the message: most are not envelopes.
        if len(obj) != 2:
            return obj
        marker = obj.get("__type__", _ABSENT)
        if marker is _ABSENT or "__value__" not in obj:
            return obj
        value = obj["__value__"]
        if marker == MODEL:  # the usual envelope, first
            return self.model(value)
        if not isinstance(marker, str):
            return Invalid(f"type marker must be a string, got {short(marker)}")
        handler = _TASKOPS_DECODERS.get(marker)
        if handler is not None:
            return handler(self, value)
        if marker == INVALID:
            return Invalid(value[:500] if isinstance(value, str) else "invalid value")
        if marker == REDACTED:
            return Invalid(REDACTED_ERROR)
        kombu_decoder = _KOMBU_DECODERS.get(marker)
        if kombu_decoder is None:
            return Invalid(f"unknown type marker {short(marker)}")
        try:
            return kombu_decoder(value)
        except (TypeError, ValueError, ArithmeticError) as exc:
            return Invalid(f"bad {marker} value {short(value)}: {exc}")

    def model(self, value: Any) -> RefPlaceholder | Invalid:
        # Once per ref: what depends only on the label is read once per label (wire_model).
        if type(value) is not dict or len(value) != 2 or "model" not in value or "pk" not in value:
            return Invalid(f"{MODEL}: expected {{'model': str, 'pk': int | str}}, got {short(value)}")
        label = value["model"]
        wire = wire_model(label) if type(label) is str else None
        if type(wire) is not WireModel:
            return self.not_a_model(label, wire, MODEL)
        self.refs_left -= 1
        if self.refs_left < 0:
            return self.too_many_refs()
        pk = value["pk"]
        bounds = wire.int_range
        if type(pk) is not int or bounds is None or not bounds[0] <= pk <= bounds[1]:
            pk = normal_pk(wire.model, pk)
            if isinstance(pk, Invalid):
                return pk
        return RefPlaceholder(ModelRef(wire.label, pk))

    def models(self, value: Any) -> RefListPlaceholder | Invalid:
        if not isinstance(value, dict) or value.keys() != {"model", "pks"} or not isinstance(value["pks"], list):
            return Invalid(f"{MODELS}: expected {{'model': str, 'pks': [int | str, ...]}}, got {short(value)}")
        wire = self.wire_model(value["model"], MODELS)
        if isinstance(wire, Invalid):
            return wire
        if not self.take_refs(len(value["pks"])):
            return self.too_many_refs()
        pks = []
        for pk in value["pks"]:
            normal = pk if wire.takes_as_it_is(pk) else normal_pk(wire.model, pk)
            if isinstance(normal, Invalid):
                return normal
            pks.append(normal)
        return RefListPlaceholder(wire.label, tuple(pks))

    def attrs(self, value: Any) -> AttrsPlaceholder | Invalid:
        if not isinstance(value, dict) or value.keys() != {"class", "data"} or not isinstance(value["class"], str):
            return Invalid(f"{ATTRS}: expected {{'class': str, 'data': ...}}, got {short(value)}")
        name = value["class"]
        cls = attrs_registry.lookup(name)
        if cls is None:
            why = "registered twice" if name in attrs_registry.conflicts else "not registered"
            return Invalid(f"{ATTRS}: class {short(name)} is {why}")
        return AttrsPlaceholder(cls, name, value["data"])

    def wire_model(self, label: Any, marker: str) -> WireModel | Invalid:
        wire = wire_model(label) if type(label) is str else None
        return wire if isinstance(wire, WireModel) else self.not_a_model(label, wire, marker)

    def not_a_model(self, label: Any, why: Any, marker: str) -> Invalid:
        if not isinstance(why, str):
            why = f"model label must look like 'app_label.modelname', got {short(label)}"
        return Invalid(f"{marker}: {why}")

    def take_refs(self, count: int) -> bool:
        self.refs_left -= count
        return self.refs_left >= 0

    def too_many_refs(self) -> Invalid:
        return Invalid(f"more than {self.limits.max_refs} model references in one message (TASKOPS['MAX_REFS'])")


_TASKOPS_DECODERS: dict[str, Callable[[_Decoder, Any], Any]] = {
    MODEL: _Decoder.model,
    MODELS: _Decoder.models,
    ATTRS: _Decoder.attrs,
}


@attrs.frozen
class WireModel:
    """What the decoder needs of a model label, read once per label (not per ref)."""

    model: type[Model]
    label: str
    #: The lowest and highest int pk the field takes (an integer pk); None: the pk is not an int.
    int_range: tuple[float, float] | None

    def takes_as_it_is(self, pk: Any) -> bool:
        """An int in the field's range: already its JSON form, no further reading (the usual ref)."""
        bounds = self.int_range
        return type(pk) is int and bounds is not None and bounds[0] <= pk <= bounds[1]


@functools.lru_cache(maxsize=256)  # bounded: labels come from the wire
def wire_model(label: str) -> WireModel | str:
    """The model a wire label names, if installed and allowed; else why not. Cleared with the limits."""
    if label.count(".") != 1:
        return f"model label must look like 'app_label.modelname', got {short(label)}"
    model = installed_model(label)
    if model is None:
        return f"model {short(label)} is not installed"
    allowed = current_limits().allowed_models
    if allowed is not None and model._meta.label_lower not in allowed:
        return f"model {model._meta.label_lower!r} is not allowed (TASKOPS['ALLOWED_MODELS'])"
    field = model._meta.pk
    int_range = None
    if isinstance(field, IntegerField):
        low, high = _pk_bounds(field)
        int_range = (-math.inf if low is None else low, math.inf if high is None else high)
    return WireModel(model, model._meta.label_lower, int_range)


def _forget_wire_models(*, setting: str, **kwargs: Any) -> None:
    if setting == "TASKOPS":
        wire_model.cache_clear()


setting_changed.connect(_forget_wire_models, dispatch_uid="taskops.wire.decode")


def _pk_bounds(field: Any) -> tuple[Any, Any]:
    low = max((v.limit_value for v in field.validators if isinstance(v, MinValueValidator)), default=None)
    high = min((v.limit_value for v in field.validators if isinstance(v, MaxValueValidator)), default=None)
    return low, high


def normal_pk(model: type[Model], pk: Any) -> Any:
    """The pk as the model's field reads it, back in JSON form: ``"7"`` and ``7`` are one ref."""
    if type(pk) is str and "\x00" in pk:  # PostgreSQL refuses NUL in any query
        return Invalid(f"pk of {model._meta.label_lower} must not contain NUL characters, got {short(pk)}")
    if type(pk) is not int and type(pk) is not str:
        return Invalid(f"pk of {model._meta.label_lower} must be an int or a str, got {short(pk)}")
    try:
        return _pk_reader(model)(pk)
    except (ValidationError, TypeError, ValueError, OverflowError):
        return Invalid(f"{short(pk)} is not a valid pk for {model._meta.label_lower}")


@functools.cache  # keyed by installed model classes only (the decoder checked the label)
def _pk_reader(model: type[Model]) -> Callable[[Any], Any]:
    """A function from a wire pk to its JSON form; raises for a pk the field refuses."""
    field = model._meta.pk
    assert field is not None  # every installed concrete model has one
    if not isinstance(field, IntegerField):

        def read_other(pk: Any) -> Any:
            value = field.to_python(pk)
            field.run_validators(value)
            return json_pk(value)

        return read_other
    # Integer pks, the common case: the field's range, read once (Django takes it from the backend).
    low, high = _pk_bounds(field)

    def read_int(pk: Any) -> Any:
        value = pk if type(pk) is int else field.to_python(pk)
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError("out of range")
        return value

    return read_int


def loads(payload: str | bytes | bytearray | memoryview) -> Any:
    """Decode a message body; semantic problems become :class:`Invalid` placeholders.

    Raises only when ``payload`` is not JSON text at all.
    """
    if isinstance(payload, memoryview | bytearray):
        payload = bytes(payload)
    limits = current_limits()
    refused = too_long(payload, limits)
    if refused is not None:
        return json.loads(refused, object_hook=_Decoder(limits).hook)
    text = within_limits(payload.decode("utf-8") if isinstance(payload, bytes) else payload, limits)
    if "__type__" not in text and "\\u" not in text:
        # No envelope can be in it (not even one spelled with escapes): no hook per object.
        return json.loads(text)
    return json.loads(text, object_hook=_Decoder(limits).hook)


def decode(payload: str | bytes | bytearray | memoryview) -> Any:
    """Decode strictly: the value with placeholders for refs and attrs objects, or :class:`CodecError`.

    Never touches the database; :func:`taskops.wire.resolve` fetches the refs.
    """
    try:
        value = loads(payload)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CodecError(f"not JSON: {exc}") from exc
    collect_refs(value, set(), root="$")
    return value
