"""System checks: the ``TASKOPS`` setting, the Celery app's serializers and
task class, and the attrs registry. Registered in ``TaskopsConfig.ready()``.

| id | what |
|---|---|
| E001 | unknown ``TASKOPS`` key (or ``TASKOPS`` is not a dict) |
| E002 | a ``TASKOPS`` value of the wrong type |
| E003 | ``ALLOWED_MODELS`` names a model that is not installed |
| E010 | pickle, yaml or msgpack accepted or used by the Celery app |
| E011 | ``TASKOPS["CELERY_APP"]`` does not name a Celery app |
| E020 | an attrs class name registered twice |
| E030 | the Celery app's ``task_cls`` is not ``taskops.celery.Task`` |
| W031 | a task whose base class is not ``taskops.celery.Task`` |
| E032 | a task's ``on_missing`` / ``on_stale`` is not a known value, or its ``stale_retry_countdown`` not seconds |
| W033 | a task's type annotations cannot be read |
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from typing import Any

from celery import Celery, current_app
from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.utils.module_loading import import_string

from taskops.celery import Task, option_errors
from taskops.conf import SETTINGS, taskops_settings
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
    return errors


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
    return _check_serializers(app) + _check_task_classes(app)


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


ALL = [check_settings, check_celery_app, check_attrs_registry]
