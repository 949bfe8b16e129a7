"""The wire format (version 1): model instances, model lists and attrs objects
as JSON, in kombu's ``{"__type__": ..., "__value__": ...}`` envelope.

Encoding plugs into kombu's JSON encoder (``register_type``), so
``task_serializer = "json"`` and every JSON consumer keep working. Decoding
replaces kombu's JSON decoder for ``application/json`` with one that never
raises for a semantic problem: the worker decodes in its main process and
drops a message whose decoder raises, so an unknown class or a disallowed
model becomes an :class:`Invalid` placeholder, and the Task base raises
:class:`CodecError` when the task starts (the task fails visibly). Decoding
never touches the database: model envelopes become :class:`RefPlaceholder`
and are fetched in the worker, one query per model class.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from django.db.models import Model, QuerySet
from kombu.serialization import registry  # type: ignore[attr-defined]
from kombu.utils import json as kombu_json

from taskops.refs import ModelRef, json_pk

MODEL = "taskops.model"
MODELS = "taskops.models"
ATTRS = "taskops.attrs"


class CodecError(ValueError):
    """A payload that taskops cannot decode or encode; says what and where."""


# --- placeholders: what decoding yields before the worker resolves refs ------


@attrs.frozen
class RefPlaceholder:
    """A ``taskops.model`` envelope, not fetched yet."""

    ref: ModelRef


@attrs.frozen
class RefListPlaceholder:
    """A ``taskops.models`` envelope, not fetched yet."""

    label: str
    pks: tuple[Any, ...]

    @property
    def refs(self) -> list[ModelRef]:
        return [ModelRef(self.label, pk) for pk in self.pks]


@attrs.frozen
class AttrsPlaceholder:
    """A ``taskops.attrs`` envelope: structured once its refs are fetched."""

    cls: type
    data: Any


@attrs.frozen
class Invalid:
    """Something on the wire that must not be decoded; the task fails with ``error``."""

    error: str


# --- attrs registry ----------------------------------------------------------

_attrs_by_name: dict[str, type] = {}
_attrs_names: dict[type, str] = {}


def default_attrs_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_attrs_class(cls: type, name: str | None = None) -> type:
    """Allow ``cls`` (an attrs class) to travel as a ``taskops.attrs`` envelope."""
    if not attrs.has(cls):
        raise TypeError(f"{cls!r} is not an attrs class")
    name = name or default_attrs_name(cls)
    existing = _attrs_by_name.get(name)
    if existing is not None and existing is not cls:
        raise CodecError(f"attrs class name {name!r} is registered twice: {existing!r} and {cls!r}")
    _attrs_by_name[name] = cls
    _attrs_names[cls] = name
    kombu_json.register_type(cls, ATTRS, _encode_attrs)
    return cls


def _encode_attrs(obj: Any) -> dict[str, Any]:
    from taskops.structure import converter

    return {"class": _attrs_names[type(obj)], "data": converter.unstructure(obj)}


# --- encoding ------------------------------------------------------------------


def _encode_model(instance: Model) -> dict[str, Any]:
    if instance.pk is None:
        raise CodecError(f"cannot send an unsaved {instance._meta.label} instance: it has no primary key")
    return {"model": instance._meta.label_lower, "pk": json_pk(instance.pk)}


def _encode_queryset(queryset: QuerySet[Any]) -> dict[str, Any]:
    if queryset._result_cache is not None:  # already evaluated: no query
        pks = [json_pk(obj.pk) for obj in queryset._result_cache]
    else:
        pks = [json_pk(pk) for pk in queryset.values_list("pk", flat=True)]
    return {"model": queryset.model._meta.label_lower, "pks": pks}


def dumps(value: Any) -> str:
    """Encode ``value`` exactly as a task message would carry it."""
    return kombu_json.dumps(value)


# --- decoding ------------------------------------------------------------------


def _decode_model(value: Any) -> RefPlaceholder | Invalid:
    if not isinstance(value, dict) or set(value) != {"model", "pk"}:
        return Invalid(f"{MODEL}: expected {{'model', 'pk'}}, got {value!r:.200}")
    label = _check_label(value["model"])
    if isinstance(label, Invalid):
        return label
    pk = value["pk"]
    if not isinstance(pk, int | str) or isinstance(pk, bool):
        return Invalid(f"{MODEL}: pk of {label} must be an int or a str, got {pk!r:.100}")
    return RefPlaceholder(ModelRef(label, pk))


def _decode_models(value: Any) -> RefListPlaceholder | Invalid:
    if not isinstance(value, dict) or set(value) != {"model", "pks"} or not isinstance(value["pks"], list):
        return Invalid(f"{MODELS}: expected {{'model', 'pks': [...]}}, got {value!r:.200}")
    label = _check_label(value["model"])
    if isinstance(label, Invalid):
        return label
    for pk in value["pks"]:
        if not isinstance(pk, int | str) or isinstance(pk, bool):
            return Invalid(f"{MODELS}: pks of {label} must be ints or strs, got {pk!r:.100}")
    return RefListPlaceholder(label, tuple(value["pks"]))


def _decode_attrs(value: Any) -> AttrsPlaceholder | Invalid:
    if not isinstance(value, dict) or set(value) != {"class", "data"} or not isinstance(value["class"], str):
        return Invalid(f"{ATTRS}: expected {{'class', 'data'}}, got {value!r:.200}")
    cls = _attrs_by_name.get(value["class"])
    if cls is None:
        return Invalid(f"{ATTRS}: class {value['class']!r:.100} is not registered")
    return AttrsPlaceholder(cls, value["data"])


def _check_label(label: Any) -> str | Invalid:
    from django.apps import apps

    from taskops.conf import taskops_settings

    if not isinstance(label, str) or label.count(".") != 1:
        return Invalid(f"model label must look like 'app_label.modelname', got {label!r:.100}")
    allowed = taskops_settings.ALLOWED_MODELS
    if allowed is not None and label not in {item.lower() for item in allowed}:
        return Invalid(f"model {label!r} is not allowed (TASKOPS['ALLOWED_MODELS'])")
    try:
        apps.get_model(label)
    except (LookupError, ValueError):
        return Invalid(f"model {label!r} is not installed")
    return label


_taskops_decoders = {MODEL: _decode_model, MODELS: _decode_models, ATTRS: _decode_attrs}


def _object_hook(obj: dict[str, Any]) -> Any:
    if len(obj) != 2 or obj.keys() != {"__type__", "__value__"}:
        return obj
    marker = obj["__type__"]
    decoder = _taskops_decoders.get(marker) if isinstance(marker, str) else None
    if decoder is not None:
        return decoder(obj["__value__"])
    kombu_decoder = kombu_json._decoders.get(marker) if isinstance(marker, str) else None  # type: ignore[attr-defined]
    if kombu_decoder is None:
        return Invalid(f"unknown type marker {marker!r:.100}")
    try:
        return kombu_decoder(obj["__value__"])
    except (TypeError, ValueError, AttributeError) as exc:
        return Invalid(f"bad {marker} value {obj['__value__']!r:.100}: {exc}")


def loads(payload: str | bytes | bytearray | memoryview) -> Any:
    """Decode a message body; semantic problems become :class:`Invalid` placeholders."""
    if isinstance(payload, memoryview):
        payload = payload.tobytes()
    if isinstance(payload, bytes | bytearray):
        payload = payload.decode("utf-8")
    return json.loads(payload, object_hook=_object_hook)


# --- installation ----------------------------------------------------------------

_installed = False


def install() -> None:
    """Register the encoders with kombu and take over the JSON decoder (idempotent)."""
    global _installed
    if _installed:
        return
    kombu_json.register_type(QuerySet, MODELS, _encode_queryset)
    kombu_json.register_type(Model, MODEL, _encode_model)
    registry.register("json", kombu_json.dumps, loads, content_type="application/json", content_encoding="utf-8")
    _installed = True
