"""The ``taskops`` message header: what the worker needs to judge staleness alone.

One frozen class writes it (:meth:`TaskopsHeader.to_message`) and reads it
(:meth:`TaskopsHeader.from_request`); nothing else touches the raw header.
Version 1 on the wire::

    {"v": 1, "enqueued_at": "<ISO 8601>", "tx": <bool>,
     "refs": [[<label>, <pk>, <argument path>, {<field>: <digest>}], ...],
     "kid": "<key id>", "redacted": true, "spilled": <count>}

``kid``, ``redacted`` and ``spilled`` are optional (a reader of version 1
that predates them ignores them): ``kid`` names the key the digests were
made with (see :mod:`taskops.staleness.snapshot`; absent: unkeyed digests,
which are never compared); ``redacted``, written only when true, says that
the publisher hid the arguments (Celery's ``argsrepr``/``kwargsrepr``), so
that a worker that records the dispatch stores them no more than the
publisher did; ``spilled``, written only when the refs would take more than
the header's budget (``TASKOPS["HEADER_BYTES"]``; a broker caps a message's
headers, RabbitMQ at one frame, 128 KiB by default), counts the refs left
out: ``refs`` is then empty and the worker reads them from the publisher's
record (:mod:`taskops.staleness.spilled`).

Reading never raises: a header of another version, a field that is not
what version 1 says, or a ref to a model that is not installed or not
allowed (``TASKOPS["ALLOWED_MODELS"]``, as for the body), is kept as a problem (``problems``) for the recorder to
store on the row, and the parts that could be read are used.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import attrs
from django.utils import timezone

from taskops.wire.errors import short
from taskops.wire.limits import current_limits, installed_model

#: Name of the message header.
HEADER = "taskops"
#: The version this code writes and reads.
VERSION = 1
#: Longest argument path kept (the ``ObjectRef.argument`` column).
ARGUMENT_CHARS = 255
#: Longest key id kept (the ``ObjectRef.digest_key`` column).
KEY_ID_CHARS = 16


def parse_time(value: Any) -> dt.datetime | None:
    """An aware datetime from a datetime or ISO 8601 text (naive means UTC); None for nothing."""
    if not value:
        return None
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, dt.UTC)


@attrs.frozen
class HeaderRef:
    """One referenced row as the publisher saw it."""

    label: str
    pk: Any
    argument: str
    digests: dict[str, str]


@attrs.frozen
class TaskopsHeader:
    """The header of one message; ``problems`` says what could not be read."""

    enqueued_at: dt.datetime | None
    in_transaction: bool
    refs: tuple[HeaderRef, ...]
    version: int = VERSION
    problems: tuple[str, ...] = ()
    #: The id of the key the digests were made with ("": unknown).
    digest_key: str = ""
    #: The publisher hid the arguments (``argsrepr``/``kwargsrepr``).
    redacted: bool = False
    #: Refs left out of the message (over its budget); the publisher's record holds them.
    spilled: int = 0

    def to_message(self, budget: int | None = None) -> dict[str, Any]:
        """The header as it goes on the wire (JSON-native values only).

        With a ``budget`` (bytes), refs that would take more than it are left
        out whole, and counted in ``spilled``.
        """
        refs = [[ref.label, ref.pk, ref.argument, ref.digests] for ref in self.refs]
        spilled = self.spilled
        if budget is not None and refs and _wire_length(refs) > budget:
            refs, spilled = [], spilled + len(refs)
        message: dict[str, Any] = {
            "v": self.version,
            "enqueued_at": self.enqueued_at.isoformat() if self.enqueued_at else None,
            "tx": self.in_transaction,
            "refs": refs,
        }
        if self.digest_key:
            message["kid"] = self.digest_key
        if self.redacted:
            message["redacted"] = True
        if spilled:
            message["spilled"] = spilled
        return message

    @classmethod
    def from_request(cls, request: Any) -> TaskopsHeader | None:
        """The header of a Celery request (or message headers); None when the message has none."""
        value = getattr(request, HEADER, None)
        headers = getattr(request, "headers", None)
        if value is None and isinstance(headers, dict):
            value = headers.get(HEADER)
        if value is None and isinstance(request, dict):
            value = request.get(HEADER)
        return None if value is None else cls.from_message(value)

    @classmethod
    def from_message(cls, value: Any) -> TaskopsHeader:
        """Read a raw header value; never raises."""
        if not isinstance(value, dict):
            return cls(None, False, (), problems=(f"taskops header is a {type(value).__name__}, not an object",))
        version = value.get("v")
        if version != VERSION:
            # Another version's fields may mean other things: use none of them.
            problem = f"taskops header version {short(version)} is not understood (this worker reads {VERSION})"
            return cls(None, False, (), version=version if isinstance(version, int) else -1, problems=(problem,))
        problems: list[str] = []
        try:
            enqueued_at = parse_time(value.get("enqueued_at"))
        except (TypeError, ValueError):
            problems.append(f"enqueued_at {short(value.get('enqueued_at'))} is not a time")
            enqueued_at = None
        tx = _read_bool(value, "tx", problems)
        refs = tuple(_read_refs(value.get("refs"), problems))
        key_id = value.get("kid", "")
        if not isinstance(key_id, str) or len(key_id) > KEY_ID_CHARS or "\x00" in key_id:
            problems.append(f"kid {short(key_id)} is not a key id")
            key_id = ""
        redacted = _read_bool(value, "redacted", problems)
        spilled = value.get("spilled", 0)
        if isinstance(spilled, bool) or not isinstance(spilled, int) or spilled < 0:
            problems.append(f"spilled {short(spilled)} is not a count")
            spilled = 0
        return cls(
            enqueued_at,
            tx,
            refs,
            problems=tuple(problems),
            digest_key=key_id,
            redacted=redacted,
            spilled=spilled,
        )


def _wire_length(refs: list[list[Any]]) -> int:
    """About what ``refs`` take in a message's headers (their compact JSON; C-level work)."""
    return len(json.dumps(refs, separators=(",", ":"), ensure_ascii=False))


def _read_bool(value: dict[str, Any], name: str, problems: list[str]) -> bool:
    flag = value.get(name, False)
    if not isinstance(flag, bool):
        problems.append(f"{name} {short(flag)} is not a boolean")
        return False
    return flag


def _read_refs(value: Any, problems: list[str]) -> list[HeaderRef]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"refs {short(value)} is not a list")
        return []
    refs = []
    allowed = current_limits().allowed_models
    for index, item in enumerate(value):
        ref = _read_ref(item)
        if ref is None:
            problems.append(f"refs[{index}] {short(item)} is not [label, pk, argument, digests]")
        elif (model := installed_model(ref.label)) is None:
            problems.append(f"refs[{index}]: model {short(ref.label)} is not installed")
        elif allowed is not None and model._meta.label_lower not in allowed:
            problems.append(f"refs[{index}]: model {short(ref.label)} is not allowed (TASKOPS['ALLOWED_MODELS'])")
        else:
            refs.append(ref)
    return refs


def _read_ref(item: Any) -> HeaderRef | None:
    if not isinstance(item, list) or len(item) != 4:
        return None
    label, pk, argument, digests = item
    if not isinstance(label, str) or label.count(".") != 1 or "\x00" in label:
        return None
    if isinstance(pk, bool) or not isinstance(pk, int | str) or (isinstance(pk, str) and "\x00" in pk):
        return None
    if not isinstance(argument, str) or not isinstance(digests, dict | None):
        return None
    clean = {str(k): str(v) for k, v in (digests or {}).items() if isinstance(k, str) and isinstance(v, str)}
    return HeaderRef(label, pk, argument[:ARGUMENT_CHARS], clean)
