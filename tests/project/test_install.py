"""The README's install steps, followed to the letter in a fresh environment.

``python -m build`` makes the sdist and, from it, the wheel; a new virtual
environment gets that wheel (not an editable install) and whatever pip
resolves for it, as a user's would. ``django-admin startproject proj`` makes
a project; the README's "Adding taskops to an existing project" is applied to
it from the README's own code blocks (settings, ``proj/celery.py``,
``proj/__init__.py``), plus a tiny app with a model and a task. Then
``check``, ``migrate``, a real worker, and one task published with a model
instance: its ``Dispatch`` and ``ObjectRef`` are recorded, it runs, and the
admin pages render from the installed package.

The project uses SQLite and kombu's filesystem broker in a temporary folder
(the only lines the README does not give: a broker that needs no server), so
every CI leg runs it the same way; pip reuses its cache. About a minute.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent.parent
README = BASE_DIR / "README.md"
SECTION = "## Adding taskops to an existing project"
WORKER_READY_TIMEOUT = 90.0

#: Variables of the test run that must not reach the fresh project: pytest-django's settings
#: module, the suite's virtual environment, and the brokers and databases of the CI legs
#: (Celery reads CELERY_BROKER_URL and CELERY_RESULT_BACKEND from the environment first).
HOST_ONLY_VARIABLES = {
    "DJANGO_SETTINGS_MODULE",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "DEBUG",
    "SECRET_KEY",
}

#: The tiny app of the fresh project: a model in the admin, and a task that takes an instance of it.
SHOP_MODELS = """
from django.db import models


class Order(models.Model):
    title = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.title
"""
SHOP_ADMIN = """
from django.contrib import admin

from shop.models import Order

admin.site.register(Order)
"""
SHOP_TASKS = """
from celery import shared_task

from shop.models import Order


@shared_task
def ship(order: Order) -> str:
    return f"shipped {order.title} ({type(order).__name__} {order.pk})"
"""

#: Run in the fresh project once the worker is up: publish, wait, then read what taskops recorded.
PUBLISH = """
import json
import time

import django

django.setup()

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse

from shop.models import Order
from shop.tasks import ship
from taskops import recording
from taskops.models import Dispatch, State

order = Order.objects.create(title="Blue mug")
result = ship.delay(order)
value = result.get(timeout=60)
recording.flush(timeout=30)
deadline = time.monotonic() + 30
dispatch = Dispatch.objects.get(task_id=result.id)
while dispatch.state != State.SUCCESS and time.monotonic() < deadline:
    time.sleep(0.2)
    dispatch.refresh_from_db()

user = get_user_model().objects.create_superuser("operator", "operator@example.com", "not-a-real-password")
client = Client(HTTP_HOST="localhost")
client.force_login(user)
pages = {
    "detail": client.get(reverse("admin:taskops_dispatch_change", args=[dispatch.pk])),
    "changelist": client.get(reverse("admin:taskops_dispatch_changelist")),
    "dashboard": client.get(reverse("admin:taskops_dispatch_dashboard")),
    "dashboard_refresh": client.get(reverse("admin:taskops_dispatch_dashboard"), headers={"HX-Request": "true"}),
    "index": client.get(reverse("admin:index")),
    "order": client.get(reverse("admin:shop_order_change", args=[order.pk])),
}
order_type = ContentType.objects.get_for_model(Order)
history_url = reverse("admin:taskops_dispatch_object_history", args=[order_type.pk, order.pk])
print(json.dumps({
    "value": value,
    "task_name": dispatch.task_name,
    "state": dispatch.state,
    "refs": [[ref.content_type.app_label, ref.content_type.model, ref.object_pk] for ref in dispatch.refs.all()],
    "order_pk": str(order.pk),
    "task_result": getattr(dispatch.task_result, "status", None),
    "status": {name: page.status_code for name, page in pages.items()},
    "detail_names_the_order": "Blue mug" in pages["detail"].text,
    "refresh_is_a_partial": "<html" not in pages["dashboard_refresh"].text,
    "index_links_the_dashboard": reverse("admin:taskops_dispatch_dashboard") in pages["index"].text,
    "order_links_its_task_history": history_url in pages["order"].text,
}))
"""


def readme_blocks() -> list[str]:
    """The fenced ``python`` blocks of the README's install section, dedented."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    blocks = re.findall(r"^( *)```python\n(.*?)^\1```", section, flags=re.MULTILINE | re.DOTALL)
    return ["\n".join(line.removeprefix(indent) for line in body.splitlines()) + "\n" for indent, body in blocks]


def readme_block(marker: str) -> str:
    """The one README block of the install section that contains ``marker``."""
    found = [block for block in readme_blocks() if marker in block]
    assert len(found) == 1, f"the README's install section has {len(found)} python blocks with {marker!r}"
    return found[0]


def readme_list(block: str, name: str) -> list[str]:
    """The string items of the list the README assigns to ``name`` (its ``# ...`` lines are comments)."""
    for node in ast.parse(block).body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.List)
            and [getattr(target, "id", None) for target in node.targets] == [name]
        ):
            return [
                item.value for item in node.value.elts if isinstance(item, ast.Constant) and isinstance(item.value, str)
            ]
    raise AssertionError(f"the README's block assigns no list to {name}")


def readme_settings(django_major: int) -> str:
    """Step 2 as code to append to startproject's settings: the README's items, where it puts them."""
    apps_block = readme_block("INSTALLED_APPS = [")
    apps = readme_list(apps_block, "INSTALLED_APPS")
    middleware = readme_list(apps_block, "MIDDLEWARE")
    admin_at = apps.index("django.contrib.admin")
    above, below = apps[:admin_at], apps[admin_at + 1 :]
    if django_major >= 6:  # the README: "Django 5.2 only"
        below.remove("template_partials")
    return "\n".join(
        [
            "\n# The README, step 2.",
            *(f'INSTALLED_APPS.insert(INSTALLED_APPS.index("django.contrib.admin"), {app!r})' for app in above),
            f"INSTALLED_APPS += {below!r}",
            f"MIDDLEWARE += {middleware!r}",
            readme_block("CELERY_RESULT_BACKEND"),
        ]
    )


def broker_settings(broker: Path) -> str:
    """The test's own lines: a filesystem broker, so that no CI leg's server is involved."""
    folders = {name: str(broker / name) for name in ("data", "control", "processed")}
    for folder in folders.values():
        Path(folder).mkdir(parents=True)
    options = {
        "data_folder_in": folders["data"],
        "data_folder_out": folders["data"],
        "control_folder": folders["control"],
        "processed_folder": folders["processed"],
        "store_processed": False,
    }
    return "\n".join(
        [
            "\n# The install test: a broker without a server.",
            'CELERY_BROKER_URL = "filesystem://"',
            f"CELERY_BROKER_TRANSPORT_OPTIONS = {options!r}\n",
        ]
    )


class Fresh:
    """A virtual environment of its own and a project in it; every command runs there."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.venv = root / "venv"
        self.project = root / "proj"
        self.env = {key: value for key, value in os.environ.items() if key not in HOST_ONLY_VARIABLES}
        self.env.update({"DJANGO_SETTINGS_MODULE": "proj.settings", "PYTHONUNBUFFERED": "1"})
        self.timings: dict[str, float] = {}

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, step: str, *command: str, timeout: float = 300) -> str:
        """Run ``command`` in the project folder; fail with its output unless it succeeds."""
        started = time.monotonic()
        cwd = self.project if self.project.exists() else self.root
        result = subprocess.run(command, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout)
        self.timings[step] = round(time.monotonic() - started, 1)
        assert result.returncode == 0, f"{step}: {' '.join(command)}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def manage(self, command: str, *args: str) -> str:
        return self.run(command, self.bin("python"), "manage.py", command, *args)


def oldest_build_backend() -> str:
    """``setuptools==`` the lowest version ``[build-system] requires`` allows.

    Builds normally get the newest setuptools, so a lower bound that no
    longer builds goes unnoticed (``>=69`` did: the SPDX ``license`` string
    needs 77); this test builds with the bound itself.
    """
    requires = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["build-system"]["requires"]
    bounds = [re.fullmatch(r"setuptools\s*>=\s*([\d.]+)", requirement) for requirement in requires]
    found = [bound.group(1) for bound in bounds if bound]
    assert len(found) == 1, f"no single 'setuptools>=X' in [build-system] requires: {requires}"
    return f"setuptools=={found[0]}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist, and the wheel built from it, as ``python -m build`` makes them for a release."""
    out = tmp_path_factory.mktemp("dist")
    constraints = out.parent / "build-constraints.txt"
    constraints.write_text(oldest_build_backend() + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(BASE_DIR)],
        env={**os.environ, "PIP_CONSTRAINT": str(constraints)},  # read by pip in build's isolated environments
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    wheels = sorted(out.glob("django_taskops-*-py3-none-any.whl"))
    assert len(wheels) == 1, sorted(path.name for path in out.iterdir())
    return wheels[0]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Fresh:
    """The README's steps 1-3 in a new virtual environment and a new project, with a tiny app."""
    fresh = Fresh(tmp_path_factory.mktemp("fresh"))
    fresh.run("venv", sys.executable, "-m", "venv", str(fresh.venv))
    fresh.run("pip install", fresh.bin("python"), "-m", "pip", "install", "--quiet", str(wheel))
    fresh.project.mkdir()
    fresh.run("startproject", fresh.bin("django-admin"), "startproject", "proj", str(fresh.project))
    fresh.manage("startapp", "shop")
    for name, source in {"models.py": SHOP_MODELS, "admin.py": SHOP_ADMIN, "tasks.py": SHOP_TASKS}.items():
        (fresh.project / "shop" / name).write_text(source)

    django_major = int(fresh.run("django", fresh.bin("python"), "-c", "import django; print(django.VERSION[0])"))
    package = fresh.project / "proj"
    settings = package / "settings.py"
    settings.write_text(
        settings.read_text()
        + readme_settings(django_major)
        + '\nINSTALLED_APPS += ["shop"]\n'
        + broker_settings(fresh.root / "broker")
    )
    (package / "celery.py").write_text(readme_block("task_cls="))
    init = package / "__init__.py"
    init.write_text(init.read_text() + readme_block("from .celery import app as celery_app"))
    fresh.manage("makemigrations", "shop")
    return fresh


@pytest.fixture(scope="module")
def migrated(fresh: Fresh) -> Fresh:
    fresh.manage("migrate", "--noinput")
    return fresh


@pytest.fixture(scope="module")
def worker(migrated: Fresh) -> Iterator[Path]:
    """``celery -A proj worker``, as the README says, until the module's tests are done."""
    log = migrated.root / "worker.log"
    command = [migrated.bin("celery"), "-A", "proj", "worker", "--loglevel", "INFO", "--concurrency", "1"]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=migrated.project, env=migrated.env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + WORKER_READY_TIMEOUT
        while " ready." not in log.read_text(errors="replace"):
            assert process.poll() is None, f"the worker exited with {process.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, (
                f"the worker was not ready in {WORKER_READY_TIMEOUT}s:\n{log.read_text()}"
            )
            time.sleep(0.2)
        yield log
    finally:
        process.terminate()  # warm shutdown
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_the_wheel_carries_templates_static_files_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())

    assert "taskops/templates/admin/taskops/dispatch/dashboard.html" in names
    assert "taskops/static/taskops/admin.css" in names
    assert "taskops/migrations/0001_initial.py" in names
    assert "taskops/py.typed" in names
    assert not {name for name in names if name.startswith(("tests/", "config/", "demo/", "bench/"))}


def test_the_wheel_is_built_by_the_oldest_setuptools_allowed(wheel: Path) -> None:
    generator = zipfile.ZipFile(wheel).read(f"{wheel.name.rsplit('-', 3)[0]}.dist-info/WHEEL").decode()

    assert f"Generator: setuptools ({oldest_build_backend().removeprefix('setuptools==')})" in generator


def test_the_install_is_the_wheel_not_the_checkout(fresh: Fresh) -> None:
    location = fresh.run("taskops location", fresh.bin("python"), "-c", "import taskops; print(taskops.__file__)")

    assert Path(location.strip()).is_relative_to(fresh.venv)


def test_the_readme_steps_pass_check(fresh: Fresh) -> None:
    output = fresh.manage("check", "--fail-level", "WARNING")

    assert "System check identified no issues" in output


def test_a_task_with_a_model_instance_runs_and_is_recorded(migrated: Fresh, worker: Path) -> None:
    (migrated.project / "publish.py").write_text(PUBLISH)
    found = json.loads(migrated.run("publish", migrated.bin("python"), "publish.py").strip().splitlines()[-1])

    assert found["value"] == f"shipped Blue mug (Order {found['order_pk']})"
    assert found["task_name"] == "shop.tasks.ship"
    assert found["state"] == "SUCCESS"
    assert found["refs"] == [["shop", "order", found["order_pk"]]]
    assert found["task_result"] == "SUCCESS"
    assert "shop.tasks.ship" in worker.read_text()
    assert found["status"] == {name: 200 for name in found["status"]}
    assert found["detail_names_the_order"]
    assert found["refresh_is_a_partial"]
    assert found["index_links_the_dashboard"]
    assert found["order_links_its_task_history"]
    print(f"install test timings (s): {migrated.timings}")
