"""Plugging the codec into kombu: the encoders into its JSON encoder, the
decoder in place of its ``application/json`` decoder."""

from __future__ import annotations

from django.db.models import Model, QuerySet
from kombu.serialization import registry as kombu_registry  # type: ignore[attr-defined]
from kombu.utils import json as kombu_json

from taskops.wire.decode import loads
from taskops.wire.encode import AttrsInstance, dumps, encode_attrs, encode_model, encode_queryset

_installed = False


def install() -> None:
    """Register the encoders with kombu and take over the JSON decoder (idempotent)."""
    global _installed
    if _installed:
        return
    # Encoders with marker None build their own envelope (a values() QuerySet is plain data).
    # Registered with kombu's JSON too, for code that calls kombu_json.dumps itself; messages
    # are encoded by dumps, the same encoders found by type in one lookup.
    kombu_json.register_type(QuerySet, None, encode_queryset)
    kombu_json.register_type(Model, None, encode_model)
    kombu_json.register_type(AttrsInstance, None, encode_attrs)
    kombu_registry.register("json", dumps, loads, content_type="application/json", content_encoding="utf-8")
    _installed = True
