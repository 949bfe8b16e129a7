"""What a task takes, read from its signature and annotations: the generic form is built from it.

A parameter annotated with a model (``Book``, ``list[Book]``, ``Book | None``)
takes objects; a registered attrs class, one field per attribute; ``int``,
``str``, ``bool``, ``float``, ``Decimal``, ``datetime``, ``date`` and
``UUID``, a typed value; anything else, JSON.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import inspect
import types
import typing
import uuid
from typing import Any

import attrs
from django.db.models import Model

#: Annotations that get a typed input.
SCALARS: tuple[type, ...] = (bool, int, float, str, decimal.Decimal, dt.datetime, dt.date, uuid.UUID)


class Kind(enum.Enum):
    MODEL = "model"
    MODELS = "models"
    ATTRS = "attrs"
    SCALAR = "scalar"
    JSON = "json"


@attrs.frozen
class Parameter:
    """One parameter of a task, as the generic form asks for it."""

    name: str
    kind: Kind
    #: The model (MODEL, MODELS), attrs class (ATTRS) or type (SCALAR); None for JSON.
    type: Any
    required: bool
    default: Any = None
    optional_none: bool = False


def task_function(task: Any) -> Any:
    """The function whose signature a call must fit (the bound ``run`` of a Celery task)."""
    return task.run


def parameters(task: Any) -> list[Parameter]:
    """The task's parameters in order (``*args``/``**kwargs`` are left out: nothing to ask for)."""
    function = task_function(task)
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(getattr(function, "__func__", function))
    except (NameError, AttributeError, TypeError):
        hints = {}
    found = []
    for name, parameter in signature.parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(name, parameter.annotation)
        kind, typ, optional = classify(annotation)
        required = parameter.default is parameter.empty
        default = None if required else parameter.default
        found.append(Parameter(name, kind, typ, required, default, optional))
    return found


def classify(annotation: Any) -> tuple[Kind, Any, bool]:
    """(kind, type, whether None is allowed) of one annotation."""
    optional = False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [arg for arg in args if arg is not type(None)]
        if len(rest) == 1:
            annotation, optional = rest[0], True
    if isinstance(annotation, type) and issubclass(annotation, Model):
        return Kind.MODEL, annotation, optional
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, typing.Sequence) and len(typing.get_args(annotation)) >= 1:
        item = typing.get_args(annotation)[0]
        if isinstance(item, type) and issubclass(item, Model):
            return Kind.MODELS, item, optional
    if isinstance(annotation, type) and attrs.has(annotation):
        return Kind.ATTRS, annotation, optional
    if isinstance(annotation, type) and annotation in SCALARS:
        return Kind.SCALAR, annotation, optional
    return Kind.JSON, None, optional


def object_parameters(task: Any, model: type[Model]) -> list[Parameter]:
    """The parameters that take instances of ``model`` (or a parent of it)."""
    return [p for p in parameters(task) if p.kind in (Kind.MODEL, Kind.MODELS) and issubclass(model, p.type)]


def binding_problem(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """Why ``task(*args, **kwargs)`` would not fit the task's signature, or ``""``."""
    try:
        inspect.signature(task_function(task)).bind(*args, **kwargs)
    except TypeError as exc:
        return str(exc)
    return ""
