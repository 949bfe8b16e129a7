"""The cattrs converter for attrs arguments.

Unstructuring leaves datetimes, Decimals, UUIDs and model instances as they
are, so kombu's JSON encoder wraps them in their own envelopes; structuring
accepts them back as the decoder produced them (already typed).
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import cattrs
from django.db.models import Model

converter = cattrs.Converter()

_PASSTHROUGH: tuple[type, ...] = (dt.datetime, dt.date, dt.time, decimal.Decimal, uuid.UUID)


def _is_passthrough(cls: Any) -> bool:
    return isinstance(cls, type) and (issubclass(cls, _PASSTHROUGH) or issubclass(cls, Model))


def _structure_passthrough(value: Any, cls: type) -> Any:
    if isinstance(value, cls):
        return value
    raise TypeError(f"expected {cls.__name__}, got {type(value).__name__}")


converter.register_unstructure_hook_func(_is_passthrough, lambda value: value)
converter.register_structure_hook_func(_is_passthrough, _structure_passthrough)
