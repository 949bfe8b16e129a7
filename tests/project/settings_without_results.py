"""The host project without django-celery-results, for ``tests/project/test_without_results.py``.

A project may leave that app out: taskops then shows no stored result on the
detail page (``Dispatch.task_result`` is None) and everything else works.
"""

from __future__ import annotations

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "django_celery_results"]
# No result backend (Celery's default): django-celery-results' own went with the app.
CELERY_RESULT_BACKEND = None  # type: ignore[assignment]
