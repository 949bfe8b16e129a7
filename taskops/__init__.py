"""taskops: see what your Celery tasks ran on, and whether it was stale."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

__version__ = "0.1.0"
__all__ = ["register"]

C = TypeVar("C", bound=type[Any])


@overload
def register(cls: C, /) -> C: ...
@overload
def register(*, name: str | None = None) -> Callable[[C], C]: ...


def register(cls: C | None = None, /, *, name: str | None = None) -> C | Callable[[C], C]:
    """Allow an attrs class to travel as a task argument or result.

    Use as ``@taskops.register`` or ``@taskops.register(name="report.v1")``;
    the name (default: the class's dotted path) is what the wire carries.
    """
    # Imported at the call: ``import taskops`` stays free of kombu and Django.
    from taskops.wire.registry import register_attrs_class

    def decorate(klass: C) -> C:
        register_attrs_class(klass, name)
        return klass

    return decorate(cls) if cls is not None else decorate
