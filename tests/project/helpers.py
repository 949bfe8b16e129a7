"""Run the host project (``config``) in a subprocess with an environment the test controls.

The test process itself runs on the suite's settings; the host project's
settings read the environment when they load, so each case gets a process
of its own. Only what a case passes reaches the project: the caller's
``DEBUG``, ``SECRET_KEY``, database and broker never leak in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent

#: What the host project's settings read, and what pytest-django sets: none of it leaks in.
PROJECT_VARIABLES = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CACHE_URL",
    "TASKOPS_VAR_DIR",
    "DJANGO_SETTINGS_MODULE",
}

#: Development mode, as ``make run`` asks for it.
DEVELOPMENT = {"DEBUG": "1"}


def project_env(env: dict[str, str], settings: str = "config.settings") -> dict[str, str]:
    """The process environment without the project's variables, then ``env``."""
    clean = {key: value for key, value in os.environ.items() if key not in PROJECT_VARIABLES}
    return {**clean, "DJANGO_SETTINGS_MODULE": settings, **env}


def manage(*args: str, env: dict[str, str], settings: str = "config.settings") -> subprocess.CompletedProcess[str]:
    """``python manage.py *args`` in the repository, with ``env``."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=project_env(env, settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def python(code: str, env: dict[str, str], settings: str = "config.settings") -> subprocess.CompletedProcess[str]:
    """Run ``code`` after ``django.setup()``, with ``env``."""
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{code}"],
        cwd=BASE_DIR,
        env=project_env(env, settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
