"""Per-field digests of a model instance, and drift between two of them.

A snapshot is ``{field name: digest}``: keyed BLAKE2b (16 bytes, 22 characters
of URL-safe base64) over a canonical JSON of the field's value, so a task log
never becomes a copy of personal data. Keyed, because an unkeyed hash of a
boolean or a small integer gives the value away to anyone who hashes the few
candidates. The key is derived from ``SECRET_KEY`` with a salt of taskops'
own; its short id travels with the digests (the ``kid`` of the header,
``ObjectRef.digest_key``). Digests made under a key of ``SECRET_KEY_FALLBACKS``
still compare (Django's rotation); under any other key they cannot be
compared, and the drift stays "not checked". Values are kept only for the
fields that ``TASKOPS["SNAPSHOT_VALUE_FIELDS"]`` names.

Which fields count, per model label (``"app_label.modelname"``):

- ``SNAPSHOT_FIELDS[label]``: exactly these fields (``auto_now`` ones too, if named);
- otherwise every concrete field except the primary key and ``auto_now``
  fields (those change on every ``save()`` and say nothing about the data);
- minus ``SNAPSHOT_EXCLUDE[label]``.

Snapshots are computed from the instance in memory: no query. A deferred
field (``.only()``/``.defer()``) is left out rather than fetched.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import functools
import hashlib
import json
import uuid
from json.encoder import encode_basestring_ascii
from typing import Any

import attrs
from django.conf import settings
from django.core.signals import setting_changed
from django.db.models import Field, Model
from django.utils.crypto import salted_hmac

from taskops.conf import taskops_settings

#: Bytes per digest: keyed BLAKE2b, long enough that two values sharing a digest is negligible.
DIGEST_BYTES = 16
#: Hex characters of a key id (``ObjectRef.digest_key`` holds up to 16).
KEY_ID_LENGTH = 8
#: Salts of the two derivations from a secret: the digest key, and its public id.
KEY_SALT = "taskops.staleness.snapshot.digest-key"
KEY_ID_SALT = "taskops.staleness.snapshot.key-id"

Snapshot = dict[str, str]


@attrs.frozen
class DigestKey:
    """A key digests are made with, and the short id that names it (the id reveals nothing of the key)."""

    id: str
    secret: bytes = attrs.field(repr=False)

    @classmethod
    def derive(cls, secret: str | bytes) -> DigestKey:
        """The key of one secret (``SECRET_KEY`` or a fallback), derived as Django's ``salted_hmac`` does."""
        key_id = salted_hmac(KEY_ID_SALT, "id", secret=secret, algorithm="sha256").hexdigest()[:KEY_ID_LENGTH]
        return cls(key_id, salted_hmac(KEY_SALT, "key", secret=secret, algorithm="sha256").digest())


@functools.cache
def digest_keys() -> tuple[DigestKey, ...]:
    """The key of ``SECRET_KEY`` (digests are made with it), then one per ``SECRET_KEY_FALLBACKS``."""
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
    return tuple(DigestKey.derive(secret) for secret in secrets)


def current_key() -> DigestKey:
    """The key new digests are made with."""
    return digest_keys()[0]


def key_for(key_id: str) -> DigestKey | None:
    """The key a ``key_id`` names, if this process holds it (None: another secret, or unkeyed digests)."""
    return next((key for key in digest_keys() if key.id == key_id), None) if key_id else None


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
    """The JSON the digest is taken of; the usual field values without building an encoder's state."""
    kind = type(value)
    if kind is str:
        return _encode_string(value)
    if kind is int:
        return int.__repr__(value)
    if value is None or kind is bool:
        return "null" if value is None else ("true" if value else "false")
    if kind is dt.datetime:
        return _encode_string(_canonical_default(value))
    # Everything else as before, whole (the output above is byte for byte the encoder's).
    return _CANONICAL_ENCODER.encode(value)


#: What the encoder writes for a string (it escapes to ASCII).
_encode_string = encode_basestring_ascii


def digest(value: Any, key: DigestKey | None = None) -> str:
    """The digest of one field value, under ``key`` (default: the current key)."""
    secret = (key or current_key()).secret
    raw = hashlib.blake2b(canonical_json(value).encode(), digest_size=DIGEST_BYTES, key=secret).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


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


def take(instance: Model, key: DigestKey | None = None) -> Snapshot:
    """Digests of the counted fields of ``instance``, from memory (no query), under ``key`` (default: current)."""
    key = key or current_key()
    deferred = instance.get_deferred_fields()
    return {
        field.name: digest(getattr(instance, field.attname), key)
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
    elif setting in ("SECRET_KEY", "SECRET_KEY_FALLBACKS"):
        digest_keys.cache_clear()


setting_changed.connect(_clear_caches, dispatch_uid="taskops.snapshot.clear_caches")
