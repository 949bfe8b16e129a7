"""System checks: each one fires, with its id, and stays quiet when all is well."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from celery import Celery
from celery import Task as CeleryTask
from django.test import override_settings

import taskops
from taskops import checks
from taskops import wire as codec


def make_app(name: str, **conf: Any) -> Celery:
    app = Celery(name, set_as_current=False, task_cls="taskops.celery:Task")
    app.conf.update(conf)
    return app


pickle_app = make_app(
    "pickle",
    accept_content=["json", "pickle"],
    result_accept_content=["application/x-yaml"],
    task_serializer="msgpack",
    result_serializer="json",
)
plain_app = Celery("plain", set_as_current=False)
mixed_app = make_app(
    "mixed",
    task_annotations={
        "mixed.bad_policy": {"on_missing": "sometimes"},
        "mixed.bad_countdown": {"stale_retry_countdown": -5},
    },
)
not_an_app = object()


def _other_base() -> None: ...


def _bad_policy() -> None: ...


def _bad_countdown() -> None: ...


def _unreadable(item: NotDefinedAnywhere) -> None: ...  # type: ignore[name-defined]  # noqa: F821


mixed_app.task(name="mixed.other_base", base=CeleryTask, shared=False, lazy=False)(_other_base)
mixed_app.task(name="mixed.bad_policy", shared=False, lazy=False)(_bad_policy)
mixed_app.task(name="mixed.bad_countdown", shared=False, lazy=False)(_bad_countdown)
mixed_app.task(name="mixed.unreadable", shared=False, lazy=False)(_unreadable)


def ids(messages: list[Any]) -> list[str]:
    return [message.id for message in messages]


def test_defaults_are_clean() -> None:
    assert checks.check_settings() == []
    assert checks.check_celery_app() == []
    assert checks.check_attrs_registry() == []


@override_settings(TASKOPS={"MAX_DEPHT": 3, "ATTRS_CLASES": []})
def test_unknown_key() -> None:
    errors = checks.check_settings()

    assert ids(errors) == ["taskops.E001", "taskops.E001"]
    assert "'ATTRS_CLASES'" in errors[0].msg
    assert "ATTRS_CLASSES" in (errors[0].hint or "")


@override_settings(TASKOPS=["MAX_DEPTH"])
def test_not_a_dict() -> None:
    assert ids(checks.check_settings()) == ["taskops.E001"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("MAX_DEPTH", "32"),
        ("MAX_NODES", 0),
        ("MAX_REFS", True),
        ("ALLOWED_MODELS", "testapp.question"),
        ("ATTRS_CLASSES", [1]),
        ("CELERY_APP", 5),
        ("STRICT", "yes"),
        ("WRITE_BEHIND", 1),
    ],
)
def test_wrongly_typed_value(key: str, value: Any) -> None:
    with override_settings(TASKOPS={key: value}):
        errors = checks.check_settings()

    assert ids(errors) == ["taskops.E002"]
    assert key in errors[0].msg


@override_settings(TASKOPS={"ALLOWED_MODELS": ["testapp.question", "testapp.nothing"]})
def test_allowed_model_not_installed() -> None:
    errors = checks.check_settings()

    assert ids(errors) == ["taskops.E003"]
    assert "'testapp.nothing'" in errors[0].msg


@override_settings(TASKOPS={"CELERY_APP": "tests.test_checks.pickle_app"})
def test_unsafe_serializers() -> None:
    errors = checks.check_celery_app()

    assert ids(errors) == ["taskops.E010"] * 3
    assert ["accept_content" in errors[0].msg, "result_accept_content" in errors[1].msg] == [True, True]
    assert "task_serializer" in errors[2].msg
    assert "run code" in (errors[0].hint or "")


@pytest.mark.parametrize("path", ["tests.test_checks.not_an_app", "tests.no_such_module.app"])
def test_celery_app_setting_that_names_no_app(path: str) -> None:
    with override_settings(TASKOPS={"CELERY_APP": path}):
        assert ids(checks.check_celery_app()) == ["taskops.E011"]


@override_settings(TASKOPS={"CELERY_APP": "tests.test_checks.plain_app"})
def test_app_without_taskops_task_class() -> None:
    errors = checks.check_celery_app()

    assert ids(errors) == ["taskops.E030"]
    assert 'task_cls="taskops.celery:Task"' in (errors[0].hint or "")


@override_settings(TASKOPS={"CELERY_APP": "tests.test_checks.mixed_app"})
def test_tasks_with_another_base_a_bad_policy_or_unreadable_annotations() -> None:
    messages = checks.check_celery_app()

    assert sorted((m.id, m.obj) for m in messages) == [
        ("taskops.E032", "mixed.bad_countdown"),
        ("taskops.E032", "mixed.bad_policy"),
        ("taskops.W031", "mixed.other_base"),
        ("taskops.W033", "mixed.unreadable"),
    ]
    (countdown,) = [m for m in messages if m.obj == "mixed.bad_countdown"]
    assert "stale_retry_countdown must be a number of seconds, 0 or more, got -5" in countdown.msg


def test_attrs_name_used_twice() -> None:
    @attrs.frozen
    class One:
        a: int

    @attrs.frozen
    class Other:
        a: int

    taskops.register(name="tests.checks.twice")(One)
    taskops.register(name="tests.checks.twice")(Other)
    try:
        errors = checks.check_attrs_registry()
    finally:
        codec.attrs_registry.unregister("tests.checks.twice")

    assert ids(errors) == ["taskops.E020"]
    assert "tests.checks.twice" in errors[0].msg
    assert "@taskops.register(name=...)" in (errors[0].hint or "")


def test_checks_are_registered_with_django() -> None:
    from django.core.checks.registry import registry

    assert set(checks.ALL) <= registry.registered_checks
