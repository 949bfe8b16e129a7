"""Walks over decoded values: gather their refs, put fetched instances in place
of placeholders, build attrs objects. Errors name the path (``args[0].data.q``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cattrs
from django.db.models import Model

from taskops.wire.envelopes import PLACEHOLDERS, AttrsPlaceholder, Invalid, RefListPlaceholder, RefPlaceholder
from taskops.wire.errors import CodecError, MissingObjectError
from taskops.wire.refs import ModelRef, resolve_refs
from taskops.wire.structure import converter


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


Leaf = Callable[[Any], Any]


def _map(value: Any, leaf: Leaf) -> Any:
    """``value`` rebuilt with ``leaf`` applied to every placeholder; a refusal learns its path."""
    if isinstance(value, list | tuple | dict):
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        mapped = {}
        for key, item in pairs:
            try:
                mapped[key] = _map(item, leaf)
            except _Rejected as rejected:
                rejected.steps.append(_step(key))
                raise
        if isinstance(value, dict):
            return mapped
        items = list(mapped.values())
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, Invalid):
        raise _Rejected(value.error)
    if isinstance(value, PLACEHOLDERS):
        return leaf(value)
    return value


def _located(value: Any, leaf: Leaf, root: str) -> Any:
    try:
        return _map(value, leaf)
    except _Rejected as rejected:
        raise rejected.located(root) from None


def _in_data(placeholder: AttrsPlaceholder, leaf: Leaf) -> Any:
    try:
        return _map(placeholder.data, leaf)
    except _Rejected as rejected:
        rejected.steps.append(".data")
        raise


def collect_refs(value: Any, into: set[ModelRef], *, root: str = "value") -> None:
    """Gather every ref in decoded ``value``; raise :class:`CodecError` (with the path) for anything refused."""

    def gather(item: Any) -> Any:
        if isinstance(item, RefPlaceholder):
            into.add(item.ref)
        elif isinstance(item, RefListPlaceholder):
            into.update(item.refs)
        else:
            _in_data(item, gather)
        return item

    _located(value, gather, root)


def substitute(value: Any, objects: dict[ModelRef, Model | None], *, root: str = "value") -> Any:
    """``value`` with refs replaced by ``objects`` and attrs data structured into instances."""

    def fill(item: Any) -> Any:
        if isinstance(item, RefPlaceholder):
            return objects[item.ref]
        if isinstance(item, RefListPlaceholder):
            return [objects[ref] for ref in item.refs]
        return _structure(item, _in_data(item, fill))

    return _located(value, fill, root)


def _structure(placeholder: AttrsPlaceholder, data: Any) -> Any:
    try:
        return converter.structure(data, placeholder.cls)
    except cattrs.BaseValidationError as exc:
        raise _Rejected(f"cannot build {placeholder.name}: {'; '.join(cattrs.transform_error(exc))}") from exc
    except Exception as exc:  # cattrs hooks and attrs validators may raise anything
        raise _Rejected(f"cannot build {placeholder.name}: {type(exc).__name__}: {exc}") from exc


def has_placeholders(value: Any) -> bool:
    """True if ``value`` holds anything that :func:`resolve` would replace."""
    if isinstance(value, PLACEHOLDERS):
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
