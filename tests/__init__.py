"""The library's test suite: tests/settings.py, tests/testapp and a Celery app of its own."""

from __future__ import annotations

from tests.celery_app import app as celery_app

__all__ = ["celery_app"]
