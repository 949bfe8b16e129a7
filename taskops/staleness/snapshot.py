"""Per-field digests of a model instance, and drift between two of them.

A snapshot is ``{field name: digest}``: 8 hex characters of BLAKE2b over a
canonical JSON of the field's value, so a task log never becomes a copy of
personal data. Values are kept only for the fields that
``TASKOPS["SNAPSHOT_VALUE_FIELDS"]`` names.

Which fields count, per model label (``"app_label.modelname"``):

- ``SNAPSHOT_FIELDS[label]``: exactly these fields (``auto_now`` ones too, if named);
- otherwise every concrete field except the primary key and ``auto_now``
  fields (those change on every ``save()`` and say nothing about the data);
- minus ``SNAPSHOT_EXCLUDE[label]``.

Snapshots are computed from the instance in memory: no query. A deferred
field (``.only()``/``.defer()``) is left out rather than fetched.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import hashlib
import json
import uuid
from typing import Any

from django.core.signals import setting_changed
from django.db.models import Field, Model

from taskops.conf import taskops_settings

#: Hex characters per digest (BLAKE2b with a 4-byte digest).
DIGEST_BYTES = 4

Snapshot = dict[str, str]


def _canonical_default(value: Any) -> Any:
    """JSON for the values a model field holds, the same in the publisher and the worker."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:  # the DB returns UTC; an instance may hold another zone
            value = value.astimezone(dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value.normalize())  # 1.50 from the DB equals 1.5 in memory
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return str(value)


#: One encoder for every digest: ``json.dumps`` with options builds a new one per call,
#: and digests are taken for every field of every referenced row at each dispatch.
_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=_canonical_default)


def canonical_json(value: Any) -> str:
    return _CANONICAL_ENCODER.encode(value)


def digest(value: Any) -> str:
    """A short digest of one field value."""
    return hashlib.blake2b(canonical_json(value).encode(), digest_size=DIGEST_BYTES).hexdigest()


def json_value(value: Any) -> Any:
    """A field value as JSON data (for the values kept by ``SNAPSHOT_VALUE_FIELDS``)."""
    return json.loads(canonical_json(value))


@functools.cache
def snapshot_fields(model: type[Model]) -> tuple[Field[Any, Any], ...]:
    """The fields of ``model`` that count for drift (see the module docstring)."""
    label = model._meta.label_lower
    chosen = _setting_for(taskops_settings.SNAPSHOT_FIELDS, label)
    excluded = set(_setting_for(taskops_settings.SNAPSHOT_EXCLUDE, label) or ())
    fields: list[Field[Any, Any]] = []
    for field in model._meta.concrete_fields:
        if chosen is not None:
            counts = field.name in chosen or field.attname in chosen
        else:
            counts = not field.primary_key and not getattr(field, "auto_now", False)
        if counts and field.name not in excluded and field.attname not in excluded:
            fields.append(field)
    return tuple(fields)


@functools.cache
def value_fields(model: type[Model]) -> frozenset[str]:
    """Names of the fields whose values (not only digests) are kept."""
    return frozenset(_setting_for(taskops_settings.SNAPSHOT_VALUE_FIELDS, model._meta.label_lower) or ())


def _setting_for(mapping: dict[str, Any], label: str) -> Any:
    for key, value in mapping.items():
        if key.lower() == label:
            return value
    return None


def take(instance: Model) -> Snapshot:
    """Digests of the counted fields of ``instance``, from memory (no query)."""
    deferred = instance.get_deferred_fields()
    return {
        field.name: digest(getattr(instance, field.attname))
        for field in snapshot_fields(type(instance))
        if field.attname not in deferred
    }


def values(instance: Model) -> dict[str, Any]:
    """The values kept for ``instance`` (only fields ``SNAPSHOT_VALUE_FIELDS`` names)."""
    names = value_fields(type(instance))
    if not names:
        return {}
    deferred = instance.get_deferred_fields()
    return {
        field.name: json_value(getattr(instance, field.attname))
        for field in type(instance)._meta.concrete_fields
        if field.name in names and field.attname not in deferred
    }


def changed_fields(before: Snapshot, after: Snapshot) -> list[str]:
    """Fields whose digests differ; a field missing on either side does not count."""
    return sorted(name for name, value in before.items() if name in after and after[name] != value)


def _clear_caches(*, setting: str, **kwargs: Any) -> None:
    if setting == "TASKOPS":
        snapshot_fields.cache_clear()
        value_fields.cache_clear()


setting_changed.connect(_clear_caches, dispatch_uid="taskops.snapshot.clear_caches")
