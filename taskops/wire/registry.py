"""attrs classes that may travel: wire names <-> classes.

Nothing on the wire is ever imported by name: a class is decoded only if it
was registered (``@taskops.register``, ``TASKOPS["ATTRS_CLASSES"]``) or is
named by a task's type annotations.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string


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
    for path in paths:
        if not isinstance(path, str):
            continue  # reported by the system check taskops.E002
        try:
            cls = import_string(path)
            register_attrs_class(cls)
        except (ImportError, TypeError) as exc:
            raise ImproperlyConfigured(f"TASKOPS['ATTRS_CLASSES']: cannot register {path!r}: {exc}") from exc
