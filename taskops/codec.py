"""The wire format (version 1): model instances, model lists and attrs objects
as JSON, in kombu's ``{"__type__": ..., "__value__": ...}`` envelope.

Encoding plugs into kombu's JSON encoder (``register_type``), so
``task_serializer = "json"`` and every JSON consumer keep working. Decoding
replaces kombu's JSON decoder for ``application/json`` with one that never
raises for a semantic problem: the worker decodes in its main process and
drops a message whose decoder raises, so an unknown class, a disallowed model
or a payload over the limits becomes an :class:`Invalid` placeholder, and the
Task base raises :class:`CodecError` when the task starts (the task fails
visibly). Decoding never touches the database: model envelopes become
:class:`RefPlaceholder` and are fetched later (:func:`resolve`), one query
per model class.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import functools
import json
import re
import types
import typing
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import IntegerField, Model, QuerySet
from django.db.models.query import ModelIterable
from kombu.serialization import registry as kombu_registry  # type: ignore[attr-defined]
from kombu.utils import json as kombu_json

from taskops.refs import MissingObjectError, ModelRef, json_pk, resolve_refs

MODEL = "taskops.model"
MODELS = "taskops.models"
ATTRS = "taskops.attrs"
#: Never produced by the encoder: what the decoder puts where it refused a subtree.
INVALID = "taskops.invalid"

__all__ = [
    "ATTRS",
    "MODEL",
    "MODELS",
    "AttrsPlaceholder",
    "CodecError",
    "Invalid",
    "MissingObjectError",
    "RefListPlaceholder",
    "RefPlaceholder",
    "decode",
    "dumps",
    "install",
    "loads",
    "resolve",
]


class CodecError(ValueError):
    """A payload that taskops cannot decode or encode; says what and where."""


# --- placeholders: what decoding yields before refs are fetched ------------------
# Each knows its own envelope (``__json__``, which kombu's encoder honours), so
# decoded arguments that are sent on unchanged (a chain's next step, a retry)
# encode back to exactly what arrived.


@attrs.frozen
class RefPlaceholder:
    """A ``taskops.model`` envelope, not fetched yet."""

    ref: ModelRef

    def __json__(self) -> dict[str, Any]:
        return _envelope(MODEL, {"model": self.ref.label, "pk": self.ref.pk})


@attrs.frozen
class RefListPlaceholder:
    """A ``taskops.models`` envelope, not fetched yet."""

    label: str
    pks: tuple[Any, ...]

    @property
    def refs(self) -> list[ModelRef]:
        return [ModelRef(self.label, pk) for pk in self.pks]

    def __json__(self) -> dict[str, Any]:
        return _envelope(MODELS, {"model": self.label, "pks": list(self.pks)})


@attrs.frozen
class AttrsPlaceholder:
    """A ``taskops.attrs`` envelope: structured once its refs are fetched."""

    cls: type
    name: str
    data: Any

    def __json__(self) -> dict[str, Any]:
        return _envelope(ATTRS, {"class": self.name, "data": self.data})


@attrs.frozen
class Invalid:
    """Something on the wire that must not be decoded; using it raises ``error``."""

    error: str

    def __json__(self) -> dict[str, Any]:
        return _envelope(INVALID, self.error)


def _envelope(marker: str, value: Any) -> dict[str, Any]:
    return {"__type__": marker, "__value__": value}


# --- attrs classes that may travel -------------------------------------------------


class AttrsRegistry:
    """Names on the wire <-> attrs classes. Only classes in here are ever decoded."""

    def __init__(self) -> None:
        self.by_name: dict[str, type] = {}
        self.names: dict[type, str] = {}
        #: Names claimed by more than one class: refused both ways (system check E020).
        self.conflicts: dict[str, list[type]] = {}
        #: Task functions whose annotations could not be read yet (a forward reference).
        self.pending_annotations: list[Callable[..., Any]] = []

    def register(self, cls: type, name: str | None = None) -> type:
        if not (isinstance(cls, type) and attrs.has(cls)):
            raise TypeError(f"{cls!r} is not an attrs class: only attrs classes can be registered")
        name = name or default_attrs_name(cls)
        existing = self.by_name.get(name)
        if existing is not None and existing is not cls:
            self.conflicts.setdefault(name, [existing]).append(cls)
        else:
            self.by_name[name] = cls
        self.names.setdefault(cls, name)
        return cls

    def unregister(self, name: str) -> None:
        cls = self.by_name.pop(name, None)
        if cls is not None and self.names.get(cls) == name:
            del self.names[cls]
        for other in self.conflicts.pop(name, []):
            if self.names.get(other) == name:
                del self.names[other]

    def name_of(self, cls: type) -> str | None:
        name = self.names.get(cls)
        if name is None and self.pending_annotations:
            self.retry_annotations()
            name = self.names.get(cls)
        return name

    def lookup(self, name: str) -> type | None:
        cls = self.by_name.get(name)
        if cls is None and self.pending_annotations:
            self.retry_annotations()
            cls = self.by_name.get(name)
        return None if name in self.conflicts else cls

    def note_annotations(self, func: Callable[..., Any]) -> None:
        """Register the attrs classes named by ``func``'s parameter and return annotations."""
        try:
            hints = typing.get_type_hints(func)
        except (NameError, AttributeError, TypeError):
            # A name defined later in its module: try again when a class is missing.
            self.pending_annotations.append(func)
            return
        for hint in hints.values():
            for cls in attrs_classes_in(hint):
                if cls not in self.names:
                    self.register(cls)

    def retry_annotations(self) -> None:
        pending, self.pending_annotations = self.pending_annotations, []
        for func in pending:
            self.note_annotations(func)


def default_attrs_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def attrs_classes_in(hint: Any) -> Iterable[type]:
    """The attrs classes a type hint names: ``X``, ``list[X]``, ``X | None``, ``dict[str, X]``..."""
    if isinstance(hint, type) and attrs.has(hint):
        yield hint
        return
    origin = typing.get_origin(hint)
    if isinstance(origin, type) and attrs.has(origin):  # a generic attrs class, X[int]
        yield origin
    for arg in typing.get_args(hint):
        if not isinstance(arg, types.EllipsisType | str):
            yield from attrs_classes_in(arg)


attrs_registry = AttrsRegistry()


def register_attrs_class(cls: type, name: str | None = None) -> type:
    """Allow ``cls`` (an attrs class) to travel as a ``taskops.attrs`` envelope."""
    return attrs_registry.register(cls, name)


def register_configured_classes(paths: Iterable[Any]) -> None:
    """Register the classes named in ``TASKOPS["ATTRS_CLASSES"]`` (dotted paths)."""
    from django.core.exceptions import ImproperlyConfigured
    from django.utils.module_loading import import_string

    for path in paths:
        if not isinstance(path, str):
            continue  # reported by the system check taskops.E002
        try:
            cls = import_string(path)
            register_attrs_class(cls)
        except (ImportError, TypeError) as exc:
            raise ImproperlyConfigured(f"TASKOPS['ATTRS_CLASSES']: cannot register {path!r}: {exc}") from exc


# --- encoding --------------------------------------------------------------------


class _AttrsInstanceMeta(type):
    def __instancecheck__(cls, instance: Any) -> bool:
        return attrs.has(type(instance))


class AttrsInstance(metaclass=_AttrsInstanceMeta):
    """Matches any attrs instance: kombu's encoder finds encoders by ``isinstance``."""


def _encode_model(instance: Model) -> dict[str, Any]:
    label = instance._meta.label_lower
    if instance.pk is None:
        raise CodecError(f"cannot send an unsaved {instance._meta.label} instance: it has no primary key")
    if isinstance(instance.pk, tuple):
        raise CodecError(f"cannot send a {instance._meta.label} instance: composite primary keys are not supported")
    _check_allowed_for_encoding(label)
    return _envelope(MODEL, {"model": label, "pk": json_pk(instance.pk)})


def _encode_queryset(queryset: QuerySet[Any]) -> Any:
    if not issubclass(queryset._iterable_class, ModelIterable):
        return list(queryset)  # .values() / .values_list(): plain data
    label = queryset.model._meta.label_lower
    _check_allowed_for_encoding(label)
    if queryset._result_cache is not None:  # already evaluated: no query
        pks = [json_pk(obj.pk) for obj in queryset._result_cache]
    else:
        pks = [json_pk(pk) for pk in queryset.values_list("pk", flat=True)]
    return _envelope(MODELS, {"model": label, "pks": pks})


def _check_allowed_for_encoding(label: str) -> None:
    allowed = current_limits().allowed_models
    if allowed is not None and label not in allowed:
        raise CodecError(f"cannot send a {label} instance: the model is not in TASKOPS['ALLOWED_MODELS']")


def _encode_attrs(obj: Any) -> dict[str, Any]:
    from taskops.structure import converter

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
    return _envelope(ATTRS, {"class": name, "data": converter.unstructure(obj)})


def dumps(value: Any) -> str:
    """Encode ``value`` exactly as a task message would carry it."""
    return kombu_json.dumps(value)


# --- decoding: size and depth, checked on the text before parsing ----------------

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_WHITESPACE = re.compile(r"\s+")
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST_PAIR = re.compile(r"\[\]|\{\}")
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


@attrs.frozen
class Limits:
    """What one message may hold; from ``TASKOPS``, cached until the setting changes."""

    max_depth: int
    max_nodes: int
    max_refs: int
    #: Lower-case model labels that may travel; None allows every installed model.
    allowed_models: frozenset[str] | None

    @classmethod
    def from_settings(cls) -> Limits:
        from taskops.conf import taskops_settings

        allowed = taskops_settings.ALLOWED_MODELS
        return cls(
            taskops_settings.MAX_DEPTH,
            taskops_settings.MAX_NODES,
            taskops_settings.MAX_REFS,
            None if allowed is None else frozenset(str(label).lower() for label in allowed),
        )


_limits: Limits | None = None


def current_limits() -> Limits:
    global _limits
    if _limits is None:
        _limits = Limits.from_settings()
    return _limits


def _forget_limits(*, setting: str, **kwargs: Any) -> None:
    global _limits
    if setting == "TASKOPS":
        _limits = None


setting_changed.connect(_forget_limits, dispatch_uid="taskops.codec.limits")


@functools.lru_cache(maxsize=256)  # bounded: labels come from the wire
def _installed_model(label: str) -> type[Model] | None:
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        return None


def _measure(text: str, limits: Limits) -> tuple[bool, int]:
    """(deeper than allowed, number of JSON values); cheap: C-level regexes and counts only."""
    openings = text.count("[") + text.count("{")
    # Fast path, the usual task message: too few brackets to be too deep,
    # too short to hold too many values (each value takes at least two characters).
    if openings <= limits.max_depth and (len(text) + 1) // 2 <= limits.max_nodes:
        return False, 0
    skeleton = _WHITESPACE.sub("", _STRING.sub("0", text))
    # Values: the root, one per comma, one more per non-empty container.
    nonempty = skeleton.count("[") + skeleton.count("{") - skeleton.count("[]") - skeleton.count("{}")
    nodes = 1 + skeleton.count(",") + nonempty
    brackets = _NOT_BRACKET.sub("", skeleton)
    for _ in range(limits.max_depth):
        if not brackets:
            return False, nodes
        brackets = _INNERMOST_PAIR.sub("", brackets)
    return bool(brackets), nodes


def _cut_too_deep(text: str, max_depth: int) -> str:
    """``text`` with every container nested deeper than ``max_depth`` replaced by an invalid marker."""
    marker = json.dumps(_envelope(INVALID, f"nested more than {max_depth} levels deep (TASKOPS['MAX_DEPTH'])"))
    parts: list[str] = []
    depth = 0
    cut_from = -1
    kept_up_to = 0
    for match in _TOKEN.finditer(text):
        char = match.group()[0]
        if char == '"':
            continue
        if char in "[{":
            depth += 1
            if depth == max_depth + 1:
                cut_from = match.start()
        else:
            if depth == max_depth + 1 and cut_from >= 0:
                parts += [text[kept_up_to:cut_from], marker]
                kept_up_to, cut_from = match.end(), -1
            depth -= 1
    if cut_from >= 0:  # never closed: not JSON; drop the rest so the parser fails rather than recursing
        parts += [text[kept_up_to:cut_from], marker]
        return "".join(parts)
    parts.append(text[kept_up_to:])
    return "".join(parts)


def _too_big(text: str, nodes: int, limits: Limits) -> str:
    marker = _envelope(INVALID, f"{nodes} values, more than {limits.max_nodes} (TASKOPS['MAX_NODES'])")
    if text.lstrip().startswith("["):
        # Keep the shape of a task message body, [args, kwargs, embed], so that
        # the worker runs the task and the task fails with this error.
        return json.dumps([[marker], {}, {}])
    return json.dumps(marker)


# --- decoding: envelopes -------------------------------------------------------------


def _decode_datetime(value: Any) -> Any:
    return dt.datetime.fromisoformat(_text(value))


def _decode_date(value: Any) -> Any:
    return dt.datetime.fromisoformat(_text(value)).date()


def _decode_time(value: Any) -> Any:
    return dt.time.fromisoformat(_text(value))


def _decode_decimal(value: Any) -> Any:
    return decimal.Decimal(_text(value))


def _decode_uuid(value: Any) -> Any:
    if not isinstance(value, dict) or value.keys() != {"hex"}:
        raise ValueError("expected {'hex': str}")
    return uuid.UUID(hex=_text(value["hex"]))


def _decode_bytes(value: Any) -> Any:
    return _text(value).encode("utf-8")


def _decode_base64(value: Any) -> Any:
    return base64.b64decode(_text(value).encode("ascii"), validate=True)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


#: kombu's own markers, decoded by functions that check their input's type.
_KOMBU_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": _decode_datetime,
    "date": _decode_date,
    "time": _decode_time,
    "decimal": _decode_decimal,
    "uuid": _decode_uuid,
    "bytes": _decode_bytes,
    "base64": _decode_base64,
}


class _Decoder:
    """The ``object_hook`` of one ``loads`` call (it counts refs per message)."""

    __slots__ = ("limits", "refs_left")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.refs_left = limits.max_refs

    def hook(self, obj: dict[str, Any]) -> Any:
        if len(obj) != 2 or "__type__" not in obj or "__value__" not in obj:
            return obj
        marker, value = obj["__type__"], obj["__value__"]
        if not isinstance(marker, str):
            return Invalid(f"type marker must be a string, got {_short(marker)}")
        handler = _TASKOPS_DECODERS.get(marker)
        if handler is not None:
            return handler(self, value)
        if marker == INVALID:
            return Invalid(value[:500] if isinstance(value, str) else "invalid value")
        kombu_decoder = _KOMBU_DECODERS.get(marker)
        if kombu_decoder is None:
            return Invalid(f"unknown type marker {_short(marker)}")
        try:
            return kombu_decoder(value)
        except (TypeError, ValueError, ArithmeticError) as exc:
            return Invalid(f"bad {marker} value {_short(value)}: {exc}")

    def model(self, value: Any) -> RefPlaceholder | Invalid:
        if not isinstance(value, dict) or value.keys() != {"model", "pk"}:
            return Invalid(f"{MODEL}: expected {{'model': str, 'pk': int | str}}, got {_short(value)}")
        model = self.model_class(value["model"], MODEL)
        if isinstance(model, Invalid):
            return model
        if not self.take_refs(1):
            return self.too_many_refs()
        pk = _normal_pk(model, value["pk"])
        if isinstance(pk, Invalid):
            return pk
        return RefPlaceholder(ModelRef(model._meta.label_lower, pk))

    def models(self, value: Any) -> RefListPlaceholder | Invalid:
        if not isinstance(value, dict) or value.keys() != {"model", "pks"} or not isinstance(value["pks"], list):
            return Invalid(f"{MODELS}: expected {{'model': str, 'pks': [int | str, ...]}}, got {_short(value)}")
        model = self.model_class(value["model"], MODELS)
        if isinstance(model, Invalid):
            return model
        if not self.take_refs(len(value["pks"])):
            return self.too_many_refs()
        pks = []
        for pk in value["pks"]:
            normal = _normal_pk(model, pk)
            if isinstance(normal, Invalid):
                return normal
            pks.append(normal)
        return RefListPlaceholder(model._meta.label_lower, tuple(pks))

    def attrs(self, value: Any) -> AttrsPlaceholder | Invalid:
        if not isinstance(value, dict) or value.keys() != {"class", "data"} or not isinstance(value["class"], str):
            return Invalid(f"{ATTRS}: expected {{'class': str, 'data': ...}}, got {_short(value)}")
        name = value["class"]
        cls = attrs_registry.lookup(name)
        if cls is None:
            why = "registered twice" if name in attrs_registry.conflicts else "not registered"
            return Invalid(f"{ATTRS}: class {_short(name)} is {why}")
        return AttrsPlaceholder(cls, name, value["data"])

    def model_class(self, label: Any, marker: str) -> type[Model] | Invalid:
        if not isinstance(label, str) or label.count(".") != 1:
            return Invalid(f"{marker}: model label must look like 'app_label.modelname', got {_short(label)}")
        model = _installed_model(label)
        if model is None:
            return Invalid(f"{marker}: model {_short(label)} is not installed")
        allowed = self.limits.allowed_models
        if allowed is not None and model._meta.label_lower not in allowed:
            return Invalid(f"{marker}: model {model._meta.label_lower!r} is not allowed (TASKOPS['ALLOWED_MODELS'])")
        return model

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


def _normal_pk(model: type[Model], pk: Any) -> Any:
    """The pk as the model's field reads it, back in JSON form: ``"7"`` and ``7`` are one ref."""
    if type(pk) is str and "\x00" in pk:  # PostgreSQL refuses NUL in any query
        return Invalid(f"pk of {model._meta.label_lower} must not contain NUL characters, got {_short(pk)}")
    if type(pk) is not int and type(pk) is not str:
        return Invalid(f"pk of {model._meta.label_lower} must be an int or a str, got {_short(pk)}")
    try:
        return _pk_reader(model)(pk)
    except (ValidationError, TypeError, ValueError, OverflowError):
        return Invalid(f"{_short(pk)} is not a valid pk for {model._meta.label_lower}")


@functools.cache  # keyed by installed model classes only (the decoder checked the label)
def _pk_reader(model: type[Model]) -> Callable[[Any], Any]:
    """A function from a wire pk to its JSON form; raises for a pk the field refuses."""
    field = model._meta.pk
    assert field is not None  # every installed concrete model has one
    if not isinstance(field, IntegerField):
        return lambda pk: json_pk(_clean(field, pk))
    # Integer pks, the common case: the field's range, read once (Django takes it from the backend).
    low = max((v.limit_value for v in field.validators if isinstance(v, MinValueValidator)), default=None)
    high = min((v.limit_value for v in field.validators if isinstance(v, MaxValueValidator)), default=None)

    def read_int(pk: Any) -> Any:
        value = pk if type(pk) is int else field.to_python(pk)
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError("out of range")
        return value

    return read_int


def _clean(field: Any, pk: Any) -> Any:
    value = field.to_python(pk)
    field.run_validators(value)
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def loads(payload: str | bytes | bytearray | memoryview) -> Any:
    """Decode a message body; semantic problems become :class:`Invalid` placeholders.

    Raises only when ``payload`` is not JSON text at all.
    """
    if isinstance(payload, memoryview):
        payload = payload.tobytes()
    text = payload.decode("utf-8") if isinstance(payload, bytes | bytearray) else payload
    limits = current_limits()
    too_deep, nodes = _measure(text, limits)
    if nodes > limits.max_nodes:
        text = _too_big(text, nodes, limits)
    elif too_deep:
        text = _cut_too_deep(text, limits.max_depth)
    return json.loads(text, object_hook=_Decoder(limits).hook)


def decode(payload: str | bytes | bytearray | memoryview) -> Any:
    """Decode strictly: the value with placeholders for refs and attrs objects, or :class:`CodecError`.

    Never touches the database; :func:`resolve` fetches the refs.
    """
    try:
        value = loads(payload)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CodecError(f"not JSON: {exc}") from exc
    collect_refs(value, set(), root="$")
    return value


# --- resolving placeholders --------------------------------------------------------


class _Rejected(Exception):
    """Raised deep in a walk; each container on the way out adds its step of the path."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error
        self.steps: list[str] = []

    def located(self, root: str) -> CodecError:
        return CodecError(f"{root}{''.join(reversed(self.steps))}: {self.error}")


def _step(key: Any) -> str:
    if isinstance(key, int):
        return f"[{key}]"
    return f".{key}" if isinstance(key, str) and key.isidentifier() else f"[{key!r}]"


def collect_refs(value: Any, into: set[ModelRef], *, root: str = "value") -> None:
    """Gather every ref in decoded ``value``; raise :class:`CodecError` (with the path) for anything refused."""
    try:
        _collect(value, into)
    except _Rejected as rejected:
        raise rejected.located(root) from None


def _collect(value: Any, into: set[ModelRef]) -> None:
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            try:
                _collect(item, into)
            except _Rejected as rejected:
                rejected.steps.append(_step(index))
                raise
    elif isinstance(value, dict):
        for key, item in value.items():
            try:
                _collect(item, into)
            except _Rejected as rejected:
                rejected.steps.append(_step(key))
                raise
    elif isinstance(value, RefPlaceholder):
        into.add(value.ref)
    elif isinstance(value, RefListPlaceholder):
        into.update(value.refs)
    elif isinstance(value, AttrsPlaceholder):
        try:
            _collect(value.data, into)
        except _Rejected as rejected:
            rejected.steps.append(".data")
            raise
    elif isinstance(value, Invalid):
        raise _Rejected(value.error)


def substitute(value: Any, objects: dict[ModelRef, Model | None], *, root: str = "value") -> Any:
    """``value`` with refs replaced by ``objects`` and attrs data structured into instances."""
    try:
        return _substitute(value, objects)
    except _Rejected as rejected:
        raise rejected.located(root) from None


def _substitute(value: Any, objects: dict[ModelRef, Model | None]) -> Any:
    if isinstance(value, list | tuple):
        items = []
        for index, item in enumerate(value):
            try:
                items.append(_substitute(item, objects))
            except _Rejected as rejected:
                rejected.steps.append(_step(index))
                raise
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            try:
                result[key] = _substitute(item, objects)
            except _Rejected as rejected:
                rejected.steps.append(_step(key))
                raise
        return result
    if isinstance(value, RefPlaceholder):
        return objects[value.ref]
    if isinstance(value, RefListPlaceholder):
        return [objects[ref] for ref in value.refs]
    if isinstance(value, AttrsPlaceholder):
        return _structure(value, objects)
    if isinstance(value, Invalid):
        raise _Rejected(value.error)
    return value


def _structure(placeholder: AttrsPlaceholder, objects: dict[ModelRef, Model | None]) -> Any:
    import cattrs

    from taskops.structure import converter

    try:
        data = _substitute(placeholder.data, objects)
    except _Rejected as rejected:
        rejected.steps.append(".data")
        raise
    try:
        return converter.structure(data, placeholder.cls)
    except cattrs.BaseValidationError as exc:
        raise _Rejected(f"cannot build {placeholder.name}: {'; '.join(cattrs.transform_error(exc))}") from exc
    except Exception as exc:  # cattrs hooks and attrs validators may raise anything
        raise _Rejected(f"cannot build {placeholder.name}: {type(exc).__name__}: {exc}") from exc


def has_placeholders(value: Any) -> bool:
    """True if ``value`` holds anything that :func:`resolve` would replace."""
    if isinstance(value, RefPlaceholder | RefListPlaceholder | AttrsPlaceholder | Invalid):
        return True
    if isinstance(value, list | tuple):
        return any(has_placeholders(item) for item in value)
    if isinstance(value, dict):
        return any(has_placeholders(item) for item in value.values())
    return False


def resolve(value: Any, *, root: str = "value") -> Any:
    """Decoded ``value`` with instances fetched (one query per model class) and attrs objects built.

    Raises :class:`CodecError` for anything the decoder refused and
    :class:`MissingObjectError` when a referenced row is gone.
    """
    refs: set[ModelRef] = set()
    collect_refs(value, refs, root=root)
    objects = resolve_refs(refs) if refs else {}
    missing = sorted(str(ref) for ref, obj in objects.items() if obj is None)
    if missing:
        raise MissingObjectError(f"{root}: referenced object(s) no longer exist: {', '.join(missing)}")
    return substitute(value, objects, root=root)


# --- installation ----------------------------------------------------------------

_installed = False


def install() -> None:
    """Register the encoders with kombu and take over the JSON decoder (idempotent)."""
    global _installed
    if _installed:
        return
    # Encoders with marker None build their own envelope (a values() QuerySet is plain data).
    kombu_json.register_type(QuerySet, None, _encode_queryset)
    kombu_json.register_type(Model, None, _encode_model)
    kombu_json.register_type(AttrsInstance, None, _encode_attrs)
    kombu_registry.register("json", kombu_json.dumps, loads, content_type="application/json", content_encoding="utf-8")
    _installed = True
