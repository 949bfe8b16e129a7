"""The wire format (version 1): what goes on the broker.

Model instances, model lists and attrs objects travel as JSON in kombu's
``{"__type__": ..., "__value__": ...}`` envelope; the ``taskops`` header
carries what the worker needs to judge staleness. Modules:

- :mod:`~taskops.wire.envelopes`: markers and the placeholders decoding yields;
- :mod:`~taskops.wire.encode` / :mod:`~taskops.wire.decode`: kombu's JSON, extended;
- :mod:`~taskops.wire.limits`: depth, size and ref limits, checked before parsing;
- :mod:`~taskops.wire.registry` and :mod:`~taskops.wire.structure`: attrs classes, cattrs;
- :mod:`~taskops.wire.refs`: ``ModelRef`` and bulk resolution;
- :mod:`~taskops.wire.walk`: gathering refs and putting instances in place;
- :mod:`~taskops.wire.header`: the ``taskops`` header;
- :mod:`~taskops.wire.serializer`: installing it all into kombu.
"""

from __future__ import annotations

from taskops.wire.decode import decode, loads
from taskops.wire.encode import dumps
from taskops.wire.envelopes import (
    REDACTED,
    AttrsPlaceholder,
    Invalid,
    RefListPlaceholder,
    RefPlaceholder,
    envelope,
)
from taskops.wire.errors import CodecError, MissingObjectError
from taskops.wire.header import HEADER, HeaderRef, TaskopsHeader, parse_time
from taskops.wire.refs import ModelRef, json_pk, resolve_refs
from taskops.wire.registry import (
    AttrsRegistry,
    attrs_registry,
    default_attrs_name,
    register_attrs_class,
    register_configured_classes,
)
from taskops.wire.serializer import install
from taskops.wire.walk import collect_refs, has_placeholders, resolve, substitute

__all__ = [
    "HEADER",
    "REDACTED",
    "AttrsPlaceholder",
    "AttrsRegistry",
    "CodecError",
    "HeaderRef",
    "Invalid",
    "MissingObjectError",
    "ModelRef",
    "RefListPlaceholder",
    "RefPlaceholder",
    "TaskopsHeader",
    "attrs_registry",
    "collect_refs",
    "decode",
    "default_attrs_name",
    "dumps",
    "envelope",
    "has_placeholders",
    "install",
    "json_pk",
    "loads",
    "parse_time",
    "register_attrs_class",
    "register_configured_classes",
    "resolve",
    "resolve_refs",
    "substitute",
]
