"""System checks: the ``TASKOPS`` setting, the Celery app's serializers, result
backend and task class, the attrs registry, and what the admin pages need from
the project. Registered in ``TaskopsConfig.ready()``.

Each one stands for a mistake that would otherwise pass ``manage.py check``
and then fail quietly: a worker that drops messages, a page that loses its
buttons, a dashboard whose refresh is a 500.

| id | what |
|---|---|
| E001 | unknown ``TASKOPS`` key (or ``TASKOPS`` is not a dict) |
| E002 | a ``TASKOPS`` value of the wrong type |
| E003 | ``ALLOWED_MODELS`` names a model that is not installed |
| W004 | ``SNAPSHOT_VALUE_FIELDS`` names a field ``SENSITIVE_FIELDS`` matches (stored, never shown) |
| E010 | pickle, yaml or msgpack accepted or used by the Celery app |
| E011 | ``TASKOPS["CELERY_APP"]`` does not name a Celery app |
| E012 | django-celery-results' result backend without ``django_celery_results`` installed |
| E020 | an attrs class name registered twice |
| E030 | the Celery app's ``task_cls`` is not ``taskops.celery.Task`` |
| W031 | a task whose base class is not ``taskops.celery.Task`` |
| E032 | a task's ``on_missing`` / ``on_stale`` is not a known value, or its ``stale_retry_countdown`` not seconds |
| W033 | a task's type annotations cannot be read |
| W040 | ``taskops`` below ``django.contrib.admin`` in ``INSTALLED_APPS`` |
| E041 | Django 5.2 without ``template_partials`` in ``INSTALLED_APPS`` |
| E042 | ``django_htmx`` not in ``INSTALLED_APPS`` |
| E043 | no ``django_htmx.middleware.HtmxMiddleware`` in ``MIDDLEWARE`` |
| W050 | the project serves the metrics view, and ``TASKOPS["METRICS_CACHE"]`` is process-local |
| E051 | ``TASKOPS["METRICS_CACHE"]`` is not an alias in ``CACHES`` |

The 04x checks only run with ``django.contrib.admin`` installed: they are
about taskops' admin pages.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Iterable, Iterator
from typing import Any

import django
from celery import Celery, current_app
from django.apps import apps
from django.conf import settings
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.checks import CheckMessage, Error, Warning
from django.urls import URLResolver, get_resolver
from django.utils.module_loading import import_string
from django_htmx.middleware import HtmxMiddleware

from taskops.celery import Task, option_errors
from taskops.conf import SETTINGS, taskops_settings
from taskops.views import metrics
from taskops.wire import attrs_registry, default_attrs_name

#: Serializers whose decoding runs code or builds arbitrary objects, by name and content type.
UNSAFE_CONTENT = frozenset(
    {
        "pickle",
        "application/x-python-serialize",
        "yaml",
        "application/x-yaml",
        "msgpack",
        "application/x-msgpack",
    }
)


def check_settings(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """``TASKOPS``: a dict, known keys, values of the right type, installed models."""
    value = getattr(settings, "TASKOPS", {})
    if not isinstance(value, dict):
        return [Error("TASKOPS must be a dict.", hint=f"It is a {type(value).__name__}.", id="taskops.E001")]
    errors: list[CheckMessage] = []
    for key in sorted(set(value) - set(SETTINGS)):
        errors.append(
            Error(
                f"Unknown TASKOPS key {key!r}.",
                hint=f"Known keys: {', '.join(sorted(SETTINGS))}.",
                obj="settings.TASKOPS",
                id="taskops.E001",
            )
        )
    for key, setting in SETTINGS.items():
        if key in value and not setting.valid(value[key]):
            errors.append(
                Error(
                    f"TASKOPS[{key!r}] must be {setting.expected}.",
                    hint=f"It is {value[key]!r}.",
                    obj="settings.TASKOPS",
                    id="taskops.E002",
                )
            )
    allowed = value.get("ALLOWED_MODELS")
    if allowed is not None and SETTINGS["ALLOWED_MODELS"].valid(allowed):
        for label in allowed:
            try:
                apps.get_model(label)
            except (LookupError, ValueError):
                errors.append(
                    Error(
                        f"TASKOPS['ALLOWED_MODELS'] names {label!r}, which is not an installed model.",
                        hint="Use 'app_label.modelname', e.g. 'demo.question'.",
                        obj="settings.TASKOPS",
                        id="taskops.E003",
                    )
                )
    return errors + _check_sensitive_values(value)


def _check_sensitive_values(value: dict[str, Any]) -> list[CheckMessage]:
    """Values kept for a field the admin never shows: stored for nothing, where the dispatch's records reach."""
    kept, patterns = (
        value.get("SNAPSHOT_VALUE_FIELDS", {}),
        value.get("SENSITIVE_FIELDS", SETTINGS["SENSITIVE_FIELDS"].default),
    )
    if not (SETTINGS["SNAPSHOT_VALUE_FIELDS"].valid(kept) and SETTINGS["SENSITIVE_FIELDS"].valid(patterns)):
        return []  # E002 says what is wrong
    sensitive = [re.compile(pattern, re.IGNORECASE) for pattern in patterns]
    return [
        Warning(
            f"TASKOPS['SNAPSHOT_VALUE_FIELDS'] keeps the values of {label}.{field}, "
            "which TASKOPS['SENSITIVE_FIELDS'] matches: they are stored, never shown.",
            hint="Remove the field from SNAPSHOT_VALUE_FIELDS (its drift is measured all the same).",
            obj="settings.TASKOPS",
            id="taskops.W004",
        )
        for label, fields in sorted(kept.items())
        for field in (fields if isinstance(fields, list | tuple) else ())
        if any(pattern.search(str(field)) for pattern in sensitive)
    ]


def celery_app() -> Celery:
    """The app that ``TASKOPS["CELERY_APP"]`` names, else Celery's current app."""
    path = taskops_settings.CELERY_APP
    app = import_string(path) if isinstance(path, str) else current_app._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(app, Celery):
        raise TypeError(f"{path!r} is a {type(app).__name__}, not a Celery app")
    return app


def check_celery_app(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """The Celery app: JSON only, and taskops' Task as the base of every task."""
    try:
        app = celery_app()
    except (ImportError, TypeError) as exc:
        return [
            Error(
                f"TASKOPS['CELERY_APP'] does not name a Celery app: {exc}",
                hint="Use the dotted path of your app, e.g. 'proj.celery.app'.",
                id="taskops.E011",
            )
        ]
    return _check_serializers(app) + _check_result_backend(app) + _check_task_classes(app)


def _check_serializers(app: Celery) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name in ("accept_content", "result_accept_content", "task_serializer", "result_serializer"):
        value = app.conf.get(name)
        values = [value] if isinstance(value, str) else list(value or [])
        unsafe = sorted({str(item) for item in values} & UNSAFE_CONTENT)
        if unsafe:
            errors.append(
                Error(
                    f"The Celery app {app.main!r} has {', '.join(unsafe)} in {name}.",
                    hint=(
                        "Decoding pickle, yaml or msgpack from the broker lets whoever can publish a message run "
                        "code in the worker. Use only 'json': taskops carries model instances and attrs objects "
                        f"in JSON (CELERY_{name.upper()})."
                    ),
                    obj=app.main,
                    id="taskops.E010",
                )
            )
    return errors


#: Result backend names that load django-celery-results' models (its entry points and its module).
RESULTS_APP_BACKENDS = ("django-db", "django-cache", "django_celery_results", "taskops.results")


def _check_result_backend(app: Celery) -> list[CheckMessage]:
    # Read as configured (Celery's environment variable first), never through
    # ``app.backend``: loading the backend is the very crash this check reports.
    backend = app.conf.result_backend
    if not isinstance(backend, str) or not backend.startswith(RESULTS_APP_BACKENDS):
        return []
    if apps.is_installed("django_celery_results"):
        return []
    return [
        Error(
            f"The Celery app {app.main!r} stores results with {backend!r}, "
            "but django_celery_results is not in INSTALLED_APPS.",
            hint="Add 'django_celery_results' to INSTALLED_APPS (and migrate), or choose another "
            "CELERY_RESULT_BACKEND: that backend imports its models, and workers and publishers crash "
            "when they first load it. taskops works without it (Dispatch.task_result is then None).",
            obj=app.main,
            id="taskops.E012",
        )
    ]


def _check_task_classes(app: Celery) -> list[CheckMessage]:
    if not issubclass(app.Task, Task):
        return [
            Error(
                f"The Celery app {app.main!r} does not use taskops.celery.Task as its task class.",
                hint='Create it with Celery(..., task_cls="taskops.celery:Task"): without it, tasks receive '
                "unresolved references instead of model instances.",
                obj=app.main,
                id="taskops.E030",
            )
        ]
    messages: list[CheckMessage] = []
    for name, task in sorted(app.tasks.items()):
        task_cls = type(task)
        if not isinstance(task, Task):
            messages.append(
                Warning(
                    f"Task {name} does not derive from taskops.celery.Task.",
                    hint="Drop its base= option or make that base a subclass of taskops.celery.Task.",
                    obj=name,
                    id="taskops.W031",
                )
            )
            continue
        messages += [
            Error(error, hint="Fix the task's options (or task_annotations).", obj=name, id="taskops.E032")
            for error in option_errors(task_cls)
        ]
        run = task_cls.__dict__.get("run")
        func = getattr(run, "__func__", run)
        if func is not None:
            try:
                typing.get_type_hints(func)
            except (NameError, AttributeError, TypeError) as exc:
                messages.append(
                    Warning(
                        f"The type annotations of task {name} cannot be read: {exc}",
                        hint="attrs classes it names are not registered for decoding; fix the annotation or "
                        "register the class with @taskops.register.",
                        obj=name,
                        id="taskops.W033",
                    )
                )
    return messages


def check_attrs_registry(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Every name on the wire means one class."""
    return [
        Error(
            f"The attrs class name {name!r} is registered by {len(classes)} classes: "
            f"{', '.join(default_attrs_name(cls) for cls in classes)}.",
            hint="Give each one its own name with @taskops.register(name=...); "
            "until then, neither is sent nor decoded.",
            obj=name,
            id="taskops.E020",
        )
        for name, classes in sorted(attrs_registry.conflicts.items())
    ]


#: The admin's app; taskops' pages live in its site.
ADMIN_APP = "django.contrib.admin"
#: The middleware that sets ``request.htmx``, which the dashboard's refresh relies on.
HTMX_MIDDLEWARE = "django_htmx.middleware.HtmxMiddleware"


def check_installation(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """What taskops' admin pages need from the project: app order, partials, django-htmx."""
    if not apps.is_installed(ADMIN_APP):
        return []
    return [*_check_app_order(), *_check_partials(), *_check_htmx()]


def _check_app_order() -> list[CheckMessage]:
    # The app directories template loader searches apps in INSTALLED_APPS
    # order: below the admin, taskops' copies of admin templates are never found.
    names = [config.name for config in apps.get_app_configs()]
    if names.index("taskops") < names.index(ADMIN_APP):
        return []
    return [
        Warning(
            "'taskops' comes after 'django.contrib.admin' in INSTALLED_APPS: the admin's own templates win, "
            "and the Task history button on change forms and the dashboard link on the admin index are missing.",
            hint="Move 'taskops' above 'django.contrib.admin'. If your project overrides "
            "admin/change_form_object_tools.html and admin/index.html itself, add the "
            "{% taskops_history_link %} tag to them and silence taskops.W040.",
            id="taskops.W040",
        )
    ]


def _check_partials() -> list[CheckMessage]:
    if django.VERSION >= (6, 0) or apps.is_installed("template_partials"):
        return []  # Django 6 has template partials built in.
    return [
        Error(
            "On Django 5.2 taskops needs django-template-partials: 'template_partials' is not in INSTALLED_APPS.",
            hint="Add 'template_partials' to INSTALLED_APPS (Django 6 has partials built in). Without it, every "
            "refresh of the taskops dashboard fails with a server error.",
            id="taskops.E041",
        )
    ]


def _check_htmx() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if not apps.is_installed("django_htmx"):
        messages.append(
            Error(
                "'django_htmx' is not in INSTALLED_APPS.",
                hint="Add it: the taskops dashboard loads htmx with django-htmx's {% htmx_script %} tag, "
                "and fails to render without it.",
                id="taskops.E042",
            )
        )
    if not any(_is_htmx_middleware(path) for path in settings.MIDDLEWARE):
        messages.append(
            Error(
                f"{HTMX_MIDDLEWARE} is not in MIDDLEWARE.",
                hint=f"Add {HTMX_MIDDLEWARE!r} to MIDDLEWARE. Without it the dashboard cannot tell its own "
                "refresh from a page load, and each refresh nests a whole admin page inside the panel.",
                obj="settings.MIDDLEWARE",
                id="taskops.E043",
            )
        )
    return messages


def _is_htmx_middleware(path: str) -> bool:
    """``path`` names django-htmx's middleware or a subclass of it."""
    if path == HTMX_MIDDLEWARE:
        return True
    try:
        middleware = import_string(path)
    except ImportError:
        return False  # Django reports a middleware it cannot import when it loads it.
    return isinstance(middleware, type) and issubclass(middleware, HtmxMiddleware)


def check_metrics_cache(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """The metrics view's cache: one alias of ``CACHES``, shared by every process when the view is served."""
    alias = taskops_settings.METRICS_CACHE
    if not isinstance(alias, str):
        return []  # E002 says so
    if alias not in settings.CACHES:
        return [
            Error(
                f"TASKOPS['METRICS_CACHE'] names the cache {alias!r}, which is not in CACHES.",
                hint=f"Name one of {', '.join(map(repr, settings.CACHES))}, or add {alias!r} to CACHES.",
                obj="settings.TASKOPS",
                id="taskops.E051",
            )
        ]
    try:
        backend = import_string(settings.CACHES[alias]["BACKEND"])
    except (ImportError, KeyError):
        return []  # Django says so when the cache is first used
    if not (isinstance(backend, type) and issubclass(backend, LocMemCache | DummyCache)) or not _serves_metrics():
        return []
    return [
        Warning(
            f"The metrics view caches its figures in the cache {alias!r} ({backend.__name__}), which every "
            "process keeps to itself: each web process computes its own figures, and scrapers that reach "
            "different processes see different numbers.",
            hint="Give CACHES a cache every web process shares (Redis, Memcached, or Django's DatabaseCache "
            "after 'manage.py createcachetable'), and name it in TASKOPS['METRICS_CACHE'] if it is not 'default'.",
            obj=f"settings.CACHES[{alias!r}]",
            id="taskops.W050",
        )
    ]


def _serves_metrics() -> bool:
    """Whether the project's URLconf routes a path to ``taskops.views.metrics``."""
    if not getattr(settings, "ROOT_URLCONF", None):
        return False
    view = inspect.unwrap(metrics)
    return any(inspect.unwrap(callback) is view for callback in _views(get_resolver().url_patterns))


def _views(patterns: Iterable[Any]) -> Iterator[Any]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _views(pattern.url_patterns)
        else:
            yield pattern.callback


ALL = [check_settings, check_celery_app, check_attrs_registry, check_installation, check_metrics_cache]
