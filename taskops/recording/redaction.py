"""What of a dispatch's arguments may be stored: the publisher's word, and ``TASKOPS["REDACT_KWARGS"]``.

Celery's ``argsrepr``/``kwargsrepr`` are the publisher's word that the
arguments are secret. Celery always sends both: unless the publisher passed
them, it makes them itself with ``saferepr`` of the arguments
(``celery.app.amqp.AMQP.as_task_v2``). So a repr is the publisher's own when
it differs from what that same call makes of the same arguments. A dispatch
whose publisher set either is *redacted*: it stores the two reprs, never the
encoded arguments, and its refs only by pk (no ``str()``, no values). The
side Celery made would show each object's ``str()`` (``(<User: alice>,)``):
it is made again from what taskops sends, objects by content type and pk
(``(<auth.user:5>,)``), in the message too, so that no log or event shows
it either (:func:`remade_reprs`). A retry
keeps its first publish's redaction: Celery's retry would repr the arguments
again, so the retry message gets the publisher's reprs back
(:func:`message_reprs`, which the Task base passes to Celery).

``TASKOPS["REDACT_KWARGS"]`` names keyword arguments whose values are never
stored, for every task: each is stored as the ``taskops.redacted`` marker
(sent again, it fails to decode), and Celery's own ``kwargsrepr`` is made
without the value, so that logs, events and results do not show it either.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import attrs
from celery._state import get_current_app, get_current_task
from celery.utils.saferepr import saferepr

from taskops.conf import taskops_settings
from taskops.wire import REDACTED, CodecError, TaskopsHeader, dumps, envelope, has_placeholders, loads

#: The message headers that carry the publisher's reprs.
REPRS = ("argsrepr", "kwargsrepr")
#: What Celery's ``kwargsrepr`` shows in place of a value ``REDACT_KWARGS`` names.
HIDDEN_TEXT = "<redacted>"


@attrs.frozen
class StoredArguments:
    """The ``args`` and ``kwargs`` columns of a dispatch, and whether they are the publisher's reprs."""

    args: str
    kwargs: str
    redacted: bool


#: The id of the message being published whose reprs the publisher did not give (the Task
#: base knows): Celery makes them, or taskops hiding ``REDACT_KWARGS``. Its record then need
#: not repr the arguments again to tell (:func:`set_by_publisher`, tens of microseconds).
_REPRS_NOT_GIVEN: ContextVar[str | None] = ContextVar("taskops_reprs_not_given", default=None)


@contextmanager
def reprs_not_given(task_id: str) -> Iterator[None]:
    """While publishing message ``task_id``: its reprs are not the publisher's own."""
    token = _REPRS_NOT_GIVEN.set(task_id)
    try:
        yield
    finally:
        _REPRS_NOT_GIVEN.reset(token)


def _known_not_given(task_id: Any) -> bool:
    return task_id is not None and task_id == _REPRS_NOT_GIVEN.get()


class _Hidden:
    """Stands for a hidden value in a repr."""

    def __repr__(self) -> str:
        return HIDDEN_TEXT


def hidden_names(kwargs: Mapping[str, Any]) -> frozenset[str]:
    """The keyword arguments of ``kwargs`` that ``TASKOPS["REDACT_KWARGS"]`` names."""
    names = taskops_settings.REDACT_KWARGS
    return frozenset(name for name in names if name in kwargs) if names else frozenset()


def kept_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the values ``TASKOPS["REDACT_KWARGS"]`` names replaced by the redaction marker."""
    hidden = hidden_names(kwargs)
    return {key: envelope(REDACTED, None) if key in hidden else value for key, value in kwargs.items()}


def given_by_publisher(reprs: Mapping[str, Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> frozenset[str]:
    """Which of ``argsrepr`` and ``kwargsrepr`` in ``reprs`` are the publisher's own, not Celery's (or taskops')."""
    if not any(name in reprs for name in REPRS):  # task protocol 1: no reprs at all
        return frozenset()
    given = set()
    if reprs.get("argsrepr") != celery_repr(args, "argsrepr"):
        given.add("argsrepr")
    kwargsrepr = reprs.get("kwargsrepr")
    if kwargsrepr != celery_repr(kwargs, "kwargsrepr") and kwargsrepr != hiding_kwargsrepr(kwargs):
        given.add("kwargsrepr")
    return frozenset(given)


def remade_reprs(args: Sequence[Any], kwargs: Mapping[str, Any], given: frozenset[str]) -> dict[str, str]:
    """The reprs of a redacted dispatch the publisher did not give, made without any object's ``str()``.

    From what taskops sends (encoded, then read back without a query): an
    object is ``<app_label.model:pk>``, a list of them ``<app_label.model:[pk, ...]>``,
    an attrs object ``<name {fields}>``; values ``REDACT_KWARGS`` names are
    hidden. Anything that cannot be encoded is hidden as a whole.
    """
    remade = {}
    if "argsrepr" not in given:
        sent = _as_sent(list(args))
        remade["argsrepr"] = celery_repr(tuple(sent), "argsrepr") if isinstance(sent, list) else HIDDEN_TEXT
    if "kwargsrepr" not in given:
        sent, hidden = _as_sent(kept_kwargs(kwargs)), hidden_names(kwargs)
        remade["kwargsrepr"] = (
            celery_repr({key: _Hidden() if key in hidden else value for key, value in sent.items()}, "kwargsrepr")
            if isinstance(sent, dict)
            else HIDDEN_TEXT
        )
    return remade


def _as_sent(value: Any) -> Any:
    """``value`` as a worker reads it from the message, placeholders for objects; None if it cannot be sent."""
    try:
        return loads(dumps(value))
    except (CodecError, TypeError, ValueError):
        return None


def celery_repr(value: Any, name: str) -> str:
    """What Celery puts in the ``argsrepr`` or ``kwargsrepr`` (``name``) header when the publisher does not."""
    limits = repr_limits(get_current_app())
    return saferepr(value, limits[name], maxlevels=limits["levels"])


@functools.lru_cache(maxsize=8)
def repr_limits(app: Any) -> dict[str, int]:
    """The limits Celery's reprs are made with, read once per app.

    Reading ``app.conf`` costs tens of microseconds per key, on every
    publish; an app that changes them while it runs gets its reprs taken for
    the publisher's, the safe side (its arguments are not stored).
    """
    amqp = app.amqp
    return {
        "argsrepr": amqp.argsrepr_maxsize,
        "kwargsrepr": amqp.kwargsrepr_maxsize,
        "levels": app.conf.task_repr_maxlevels,
    }


def hiding_kwargsrepr(kwargs: Mapping[str, Any]) -> str | None:
    """Celery's ``kwargsrepr`` with the values ``REDACT_KWARGS`` names hidden; None when it names none here."""
    hidden = hidden_names(kwargs)
    if not hidden:
        return None
    return celery_repr({key: _Hidden() if key in hidden else value for key, value in kwargs.items()}, "kwargsrepr")


def message_reprs(task_id: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, str]:
    """The ``argsrepr``/``kwargsrepr`` a publish must carry, when not Celery's own (the Task base passes them).

    A retry of a redacted task: that task's reprs (Celery's retry would repr
    the arguments again). Values ``REDACT_KWARGS`` names: hidden from Celery's
    ``kwargsrepr``. Given to Celery, they also reach its ``task-sent`` event.
    """
    inherited = running_task_reprs(task_id)
    if inherited is not None:
        return dict(zip(REPRS, inherited, strict=True))
    hiding = hiding_kwargsrepr(kwargs)
    return {} if hiding is None else {"kwargsrepr": hiding}


def redacted_by_header(
    reprs: Mapping[str, Any], args: Sequence[Any], kwargs: Mapping[str, Any], header: TaskopsHeader | None
) -> bool:
    """A worker's view: the ``taskops`` header says so; without one, the reprs are compared as at publish."""
    if header is not None:
        return header.redacted
    return bool(given_by_publisher(reprs, args, kwargs))


def running_task_reprs(task_id: Any) -> tuple[str, str] | None:
    """The publisher's reprs of the running task, when this publish is its retry and it was redacted."""
    request = getattr(get_current_task(), "request", None)
    if request is None or not task_id or request.id != task_id:
        return None
    reprs = {name: value for name in REPRS if (value := getattr(request, name, None)) is not None}
    if not redacted_by_header(reprs, request.args or (), request.kwargs or {}, TaskopsHeader.from_request(request)):
        return None
    return str(reprs.get("argsrepr") or ""), str(reprs.get("kwargsrepr") or "")


def publisher_arguments(
    args: Sequence[Any], kwargs: Mapping[str, Any], kept: Mapping[str, Any], headers: MutableMapping[str, Any]
) -> StoredArguments:
    """What the publisher's record stores; puts the reprs the message must carry into ``headers``.

    ``kept`` is :func:`kept_kwargs` of ``kwargs``.
    """
    # Published by name (no Task base) or with positional options: the same reprs, put in the headers here.
    inherited = running_task_reprs(headers.get("id"))
    if inherited is not None:
        headers.update(zip(REPRS, inherited, strict=True))
        return reprs_of(headers)
    given = frozenset() if _known_not_given(headers.get("id")) else given_by_publisher(headers, args, kwargs)
    if not given:
        hiding = hiding_kwargsrepr(kwargs)
        if hiding is not None and "kwargsrepr" in headers:
            headers["kwargsrepr"] = hiding
        return StoredArguments(dumps(list(args)), dumps(dict(kept)), redacted=False)
    # Redacted: the message carries, and the record stores, no object's str() in the side Celery made.
    headers.update(remade_reprs(args, kwargs, given))
    return reprs_of(headers)


def worker_arguments(
    reprs: Mapping[str, Any], args: Sequence[Any], kwargs: Mapping[str, Any], header: TaskopsHeader | None
) -> StoredArguments:
    """What a row the worker creates stores: what the publisher's would have.

    A taskops publisher remade the reprs it did not get (the header says it
    redacted); without its header, the reprs are compared as at publish.
    """
    if header is not None and header.redacted:
        return reprs_of(reprs)
    given = frozenset() if header is not None else given_by_publisher(reprs, args, kwargs)
    if given:
        # A side that holds objects differs from its repr here whoever made it (Celery made it from the
        # instances, with their str()): neither given nor Celery's for sure, it is hidden.
        unsure = {
            name: HIDDEN_TEXT for name, value in zip(REPRS, (args, kwargs), strict=True) if has_placeholders(value)
        }
        return reprs_of({**reprs, **remade_reprs(args, kwargs, given), **unsure})
    return StoredArguments(dumps(list(args)), dumps(kept_kwargs(kwargs)), redacted=False)


def reprs_of(reprs: Mapping[str, Any]) -> StoredArguments:
    return StoredArguments(str(reprs.get("argsrepr") or ""), str(reprs.get("kwargsrepr") or ""), redacted=True)
