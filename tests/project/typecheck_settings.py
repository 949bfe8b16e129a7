"""Settings for mypy's Django plugin: one app registry with every model the repository has.

The host project's settings (``config``, with the demo app that ``bench/``
uses too) plus the test-only app. Nothing runs with them.
"""

from __future__ import annotations

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]
