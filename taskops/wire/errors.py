"""The errors of the wire format: one for what cannot be encoded or decoded,
one for a referenced row that is gone."""

from __future__ import annotations


class CodecError(ValueError):
    """A payload that taskops cannot decode or encode; says what and where."""


class MissingObjectError(LookupError):
    """A row that a task's arguments (or a result) referenced is gone."""


def short(value: object, limit: int = 100) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages about values from the wire."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
