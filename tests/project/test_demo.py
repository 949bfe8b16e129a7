"""``taskops_demo seed``: the demo superuser exists only in development mode, with a password
generated and printed once, never ``admin`` / ``admin``.

Each case gets a copy of one migrated SQLite database and runs the command in
a subprocess with the host project's settings.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.project.helpers import DEVELOPMENT, manage, python

PRODUCTION = {"SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnop"}
PRINTED_LOGIN = re.compile(r"Demo superuser: admin / (\S+)")


@pytest.fixture(scope="module")
def migrated_var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    var = tmp_path_factory.mktemp("migrated") / "var"
    result = manage("migrate", "--noinput", env={**DEVELOPMENT, "TASKOPS_VAR_DIR": str(var)})
    assert result.returncode == 0, result.stdout + result.stderr
    return var


@pytest.fixture
def var_dir(migrated_var: Path, tmp_path: Path) -> dict[str, str]:
    """A fresh copy of the migrated database (and of its development key)."""
    var = tmp_path / "var"
    shutil.copytree(migrated_var, var)
    return {"TASKOPS_VAR_DIR": str(var)}


def seed(env: dict[str, str]) -> str:
    result = manage("taskops_demo", "seed", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def logins(env: dict[str, str], *passwords: str) -> list[bool]:
    """Whether ``admin`` logs in with each of ``passwords``, and is a superuser."""
    code = (
        "from django.contrib.auth import authenticate;"
        f"print([getattr(authenticate(username='admin', password=p), 'is_superuser', False) for p in {passwords!r}])"
    )
    result = python(code, env=env)
    assert result.returncode == 0, result.stderr
    return [word == "True" for word in re.findall(r"True|False", result.stdout)]


def test_development_seed_prints_a_generated_password_once(var_dir: dict[str, str]) -> None:
    env = {**DEVELOPMENT, **var_dir}
    first = seed(env)
    printed = PRINTED_LOGIN.search(first)
    assert printed, first
    password = printed.group(1)

    again = seed(env)

    assert len(password) >= 16
    assert logins(env, password, "admin") == [True, False]
    assert PRINTED_LOGIN.search(again) is None
    assert "Demo superuser 'admin' exists" in again
    assert logins(env, password) == [True]


def test_seed_without_development_mode_creates_no_superuser(var_dir: dict[str, str]) -> None:
    env = {**PRODUCTION, **var_dir}
    output = seed(env)

    assert "DEBUG is off: no demo superuser" in output
    assert PRINTED_LOGIN.search(output) is None
    result = python("from django.contrib.auth.models import User; print(User.objects.count())", env=env)
    assert result.stdout.split() == ["0"], result.stderr


def test_seed_replaces_the_old_well_known_password(var_dir: dict[str, str]) -> None:
    env = {**DEVELOPMENT, **var_dir}
    created = python(
        "from django.contrib.auth.models import User; User.objects.create_superuser('admin', 'a@example.com', 'admin')",
        env=env,
    )
    assert created.returncode == 0, created.stderr

    printed = PRINTED_LOGIN.search(seed(env))

    assert printed
    assert logins(env, "admin", printed.group(1)) == [False, True]
