"""Settings for mypy's Django plugin: one registry of every model and setting the repository has.

The host project's settings (``bench/`` and ``demo/`` run with them), then the
test settings over them, plus the demo app. Nothing runs with them.
"""

from __future__ import annotations

import os

# The host project's settings refuse to load without SECRET_KEY unless DEBUG is on.
os.environ["DEBUG"] = "1"

from config.settings import *  # noqa: F403
from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "demo"]
