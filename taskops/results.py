"""Result backends whose results are model instances, for any ``AsyncResult``.

A task's return value travels through the codec: a model instance is stored
as a reference. :class:`taskops.celery.AsyncResult` (what ``delay`` returns)
fetches it; a plain ``celery.result.AsyncResult(task_id)``, built by code that
does not know taskops, asks the app's result backend, and gets the reference
(``<demo.answer:18>``). Configure one of these backends and every
``AsyncResult`` of the app gives the instance:

    CELERY_RESULT_BACKEND = "taskops.results:DatabaseBackend"  # django-celery-results' "django-db"

:class:`ResolvingBackend` is the mixin, for any other backend class
(``class MyBackend(ResolvingBackend, RedisBackend)``). Fetching costs one
query per model class, in the process that reads the result; a row deleted
meanwhile raises :class:`~taskops.wire.MissingObjectError`. Nothing else in
taskops imports this module: it imports django-celery-results' models, which
need that app installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery import states
from django_celery_results.backends.database import DatabaseBackend as ResultsDatabaseBackend

from taskops.wire import has_placeholders, resolve

__all__ = ["DatabaseBackend", "ResolvingBackend", "resolve_meta"]

if TYPE_CHECKING:
    from celery.backends.base import Backend

    MixinBase = Backend
else:
    MixinBase = object


def resolve_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """A result meta with the references in its result fetched (exceptions are left alone)."""
    if meta and meta.get("status") not in states.EXCEPTION_STATES and has_placeholders(meta.get("result")):
        return {**meta, "result": resolve(meta["result"], root="result")}
    return meta


class ResolvingBackend(MixinBase):
    """A backend mixin: results are read with model instances and attrs objects in place of references."""

    def meta_from_decoded(self, meta: dict[str, Any]) -> dict[str, Any]:
        return resolve_meta(super().meta_from_decoded(meta))


class DatabaseBackend(ResolvingBackend, ResultsDatabaseBackend):  # type: ignore[misc]
    """django-celery-results' database backend (``"django-db"``), resolving references."""
