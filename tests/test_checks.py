"""System checks: each one fires, with its id, and stays quiet when all is well."""

from __future__ import annotations

from typing import Any

import attrs
import django
import pytest
from celery import Celery
from celery import Task as CeleryTask
from django.conf import settings
from django.test import modify_settings, override_settings
from django_htmx.middleware import HtmxMiddleware

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
results_db_app = make_app("results_db", result_backend="django-db")
results_cache_app = make_app("results_cache", result_backend="django-cache")
results_path_app = make_app("results_path", result_backend="django_celery_results.backends:DatabaseBackend")
rpc_results_app = make_app("rpc_results", result_backend="rpc://")


class ProjectHtmxMiddleware(HtmxMiddleware):
    """A project's own subclass of django-htmx's middleware."""


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
    assert checks.check_installation() == []


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


@override_settings(
    TASKOPS={"SNAPSHOT_VALUE_FIELDS": {"auth.user": ["username", "password"], "testapp.question": ["title"]}}
)
def test_values_kept_for_a_sensitive_field() -> None:
    warnings = checks.check_settings()

    assert ids(warnings) == ["taskops.W004"]
    assert "auth.user.password" in warnings[0].msg


def test_sensitive_fields_decide_which_kept_values_are_warned_of() -> None:
    kept = {"testapp.question": ["title", "body"]}
    with override_settings(TASKOPS={"SNAPSHOT_VALUE_FIELDS": kept, "SENSITIVE_FIELDS": ["^TIT"]}):
        assert ids(checks.check_settings()) == ["taskops.W004"]  # searched, case-insensitive
    with override_settings(TASKOPS={"SNAPSHOT_VALUE_FIELDS": kept}):
        assert checks.check_settings() == []  # the default patterns match neither
    with override_settings(TASKOPS={"SNAPSHOT_VALUE_FIELDS": kept, "SENSITIVE_FIELDS": ["(unclosed"]}):
        assert ids(checks.check_settings()) == ["taskops.E002"]  # the bad pattern only


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


@pytest.mark.parametrize(
    ("app_name", "backend"),
    [
        ("results_db_app", "django-db"),
        ("results_cache_app", "django-cache"),
        ("results_path_app", "django_celery_results.backends:DatabaseBackend"),
    ],
)
@modify_settings(INSTALLED_APPS={"remove": ["django_celery_results"]})
def test_results_backend_without_its_app(app_name: str, backend: str) -> None:
    with override_settings(TASKOPS={"CELERY_APP": f"tests.test_checks.{app_name}"}):
        errors = checks.check_celery_app()

    assert ids(errors) == ["taskops.E012"]
    assert repr(backend) in errors[0].msg
    assert "'django_celery_results' to INSTALLED_APPS" in (errors[0].hint or "")


@modify_settings(INSTALLED_APPS={"remove": ["django_celery_results"]})
@override_settings(TASKOPS={"CELERY_APP": "tests.test_checks.rpc_results_app"})
def test_results_backend_from_celerys_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_RESULT_BACKEND", "django-db")

    assert ids(checks.check_celery_app()) == ["taskops.E012"]


@override_settings(TASKOPS={"CELERY_APP": "tests.test_checks.results_db_app"})
def test_results_backend_with_its_app() -> None:
    assert checks.check_celery_app() == []


@modify_settings(INSTALLED_APPS={"remove": ["django_celery_results"]})
@override_settings(TASKOPS={"CELERY_APP": "tests.test_checks.rpc_results_app"})
def test_another_results_backend_needs_no_results_app() -> None:
    assert checks.check_celery_app() == []


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


def test_taskops_below_the_admin() -> None:
    below = [app for app in settings.INSTALLED_APPS if app != "taskops"] + ["taskops"]
    with override_settings(INSTALLED_APPS=below):
        messages = checks.check_installation()

    assert ids(messages) == ["taskops.W040"]
    assert "Move 'taskops' above 'django.contrib.admin'" in (messages[0].hint or "")


@modify_settings(INSTALLED_APPS={"remove": ["template_partials"]})
def test_no_template_partials() -> None:
    messages = checks.check_installation()

    # Each CI leg checks its own Django: 5.2 needs the app, 6 has partials built in.
    assert ids(messages) == ([] if django.VERSION >= (6, 0) else ["taskops.E041"])


@pytest.mark.parametrize(
    ("missing", "check_id", "hint"),
    [
        ({"INSTALLED_APPS": {"remove": ["django_htmx"]}}, "taskops.E042", "{% htmx_script %}"),
        (
            {"MIDDLEWARE": {"remove": ["django_htmx.middleware.HtmxMiddleware"]}},
            "taskops.E043",
            "'django_htmx.middleware.HtmxMiddleware'",
        ),
    ],
)
def test_no_django_htmx(missing: dict[str, dict[str, list[str]]], check_id: str, hint: str) -> None:
    with modify_settings(**missing):
        messages = checks.check_installation()

    assert ids(messages) == [check_id]
    assert hint in (messages[0].hint or "")


@modify_settings(
    MIDDLEWARE={
        "remove": ["django_htmx.middleware.HtmxMiddleware"],
        "append": ["tests.no_such_module.Middleware", "tests.test_checks.ProjectHtmxMiddleware"],
    }
)
def test_a_subclass_of_the_htmx_middleware_counts() -> None:
    assert checks.check_installation() == []


@modify_settings(
    INSTALLED_APPS={"remove": ["django.contrib.admin", "django_htmx"]},
    MIDDLEWARE={"remove": ["django_htmx.middleware.HtmxMiddleware"]},
)
def test_without_the_admin_its_pages_need_nothing() -> None:
    assert checks.check_installation() == []


def cache(backend: str) -> dict[str, dict[str, str]]:
    return {"default": {"BACKEND": f"django.core.cache.backends.{backend}"}}


@pytest.mark.parametrize("backend", ["locmem.LocMemCache", "dummy.DummyCache"])
def test_metrics_served_from_a_process_local_cache(backend: str) -> None:
    with override_settings(CACHES=cache(backend)):  # the suite's URLconf serves the metrics view
        messages = checks.check_metrics_cache()

    assert ids(messages) == ["taskops.W050"]
    assert backend.split(".")[1] in messages[0].msg
    assert "createcachetable" in (messages[0].hint or "")


@pytest.mark.parametrize("backend", ["db.DatabaseCache", "redis.RedisCache", "memcached.PyMemcacheCache"])
def test_metrics_served_from_a_shared_cache(backend: str) -> None:
    with override_settings(CACHES=cache(backend)):
        assert checks.check_metrics_cache() == []


@override_settings(CACHES=cache("locmem.LocMemCache"), ROOT_URLCONF="tests.admin.urls")
def test_a_process_local_cache_is_fine_without_the_metrics_view() -> None:
    assert checks.check_metrics_cache() == []


@override_settings(
    CACHES={**cache("locmem.LocMemCache"), "shared": cache("db.DatabaseCache")["default"]},
    TASKOPS={"METRICS_CACHE": "shared"},
)
def test_the_metrics_cache_is_the_one_its_setting_names() -> None:
    assert checks.check_metrics_cache() == []
    with override_settings(TASKOPS={"METRICS_CACHE": "default"}):
        assert ids(checks.check_metrics_cache()) == ["taskops.W050"]


@override_settings(TASKOPS={"METRICS_CACHE": "nowhere"})
def test_a_metrics_cache_that_is_not_in_caches() -> None:
    messages = checks.check_metrics_cache()

    assert ids(messages) == ["taskops.E051"]
    assert "'nowhere'" in messages[0].msg
