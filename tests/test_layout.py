"""The layout's promises: the documented names import, the domain has no HTTP, modules stay small.

The dependency rules themselves are import-linter contracts (``pyproject.toml``),
checked by ``make test``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

import taskops

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(taskops.__file__).resolve().parent
#: Packages below the admin: they speak to Celery and the database, never to a browser.
DOMAIN = ("wire", "staleness", "recording", "redispatch", "alerts", "celery.py", "intake.py", "results.py")
HTTP_MODULES = ("django.http", "django.urls", "django.contrib.admin", "django.template", "django_htmx")
#: The admin's audit log is a model, not HTTP: re-dispatch writes a LogEntry for every action.
ALLOWED = ("django.contrib.admin.models",)
#: DESIGN.md: split a module before it passes about 400 lines.
MAX_LINES = 400

#: The public names, at their documented places (README, docs/architecture.md).
PUBLIC_NAMES = [
    "taskops.register",
    "taskops.celery.Task",
    "taskops.celery.AsyncResult",
    "taskops.celery.TaskSkipped",
    "taskops.celery.SKIPPED",
    "taskops.celery.CodecError",
    "taskops.celery.MissingObjectError",
    "taskops.celery.StaleObjectError",
    "taskops.wire.CodecError",
    "taskops.wire.MissingObjectError",
    "taskops.wire.dumps",
    "taskops.wire.decode",
    "taskops.wire.resolve",
    "taskops.wire.TaskopsHeader",
    "taskops.wire.lanes.lane_of",
    "taskops.results.DatabaseBackend",
    "taskops.results.ResolvingBackend",
    "taskops.staleness.TaskSkipped",
    "taskops.staleness.judge_pending",
    "taskops.staleness.StaleObjectError",
    "taskops.recording.flush",
    "taskops.recording.batch",
    "taskops.recording.shutdown",
    "taskops.recording.error_count",
    "taskops.recording.errors",
    "taskops.recording.StrictRecordingError",
    "taskops.admin.DispatchAdmin",
    "taskops.admin.redispatch.WithoutRunTask",
    "taskops.views.metrics",
    "taskops.signals.task_skipped",
    "taskops.signals.alert_opened",
    "taskops.signals.alert_resolved",
    "taskops.alerts.webhook.post_webhook",
    "taskops.models.Dispatch",
    "taskops.models.ObjectRef",
    # Old paths the README named before the packages existed.
    "taskops.codec.CodecError",
    "taskops.codec.MissingObjectError",
    "taskops.codec.dumps",
]


def is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a child of a module that is not a package
        return False


def resolve(dotted: str) -> Any:
    """Import the longest module prefix of ``dotted``, then fetch the rest as attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        if not is_module(module_name):
            continue
        value: Any = importlib.import_module(module_name)
        for attribute in parts[cut:]:
            value = getattr(value, attribute)
        return value
    raise ImportError(dotted)


@pytest.mark.parametrize("dotted", PUBLIC_NAMES)
def test_public_name_imports(dotted: str) -> None:
    assert resolve(dotted) is not None


def readme_imports() -> list[str]:
    """Every absolute ``import`` statement in the README's Python code blocks, as written.

    A relative one (``from .celery import app``) imports the reader's own package.
    """
    statements = []
    for block in re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL):
        for node in ast.walk(ast.parse(textwrap.dedent(block))):
            if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and not node.level):
                statements.append(ast.unparse(node))
    return sorted(set(statements))


def test_the_readme_imports_are_found() -> None:
    assert {"from taskops.admin.redispatch import WithoutRunTask", "import taskops.views"} <= set(readme_imports())


@pytest.mark.parametrize("statement", readme_imports())
def test_every_readme_import_works(statement: str) -> None:
    exec(statement, {})  # the README's own line, run as a reader would


def documented_paths() -> list[str]:
    """Dotted paths into taskops' modules that the README and the docs show in code spans."""
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found = set()
    for text in texts:
        for match in re.finditer(r"`(taskops(?:\.\w+)+)", text.read_text()):
            dotted = match.group(1)
            head = ".".join(dotted.split(".")[:2])
            # ``taskops.Dispatch`` (a model label) and ``taskops.view_dispatch`` (a permission) are not paths.
            if is_module(head):
                found.add(dotted)
    return sorted(found)


def test_the_docs_name_paths() -> None:
    assert {"taskops.celery.Task", "taskops.recording.flush"} <= set(documented_paths())


@pytest.mark.parametrize("dotted", documented_paths())
def test_every_path_the_docs_name_resolves(dotted: str) -> None:
    resolve(dotted)


def domain_modules() -> list[Path]:
    paths: list[Path] = []
    for name in DOMAIN:
        where = PACKAGE / name
        paths += sorted(where.rglob("*.py")) if where.is_dir() else [where]
    return paths


def imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return names


def test_the_scan_sees_imports() -> None:
    assert "taskops.wire.header" in imported_modules(PACKAGE / "wire" / "__init__.py")
    assert len(domain_modules()) > 20


@pytest.mark.parametrize("path", domain_modules(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_the_domain_has_no_http(path: Path) -> None:
    http = [name for name in imported_modules(path) if name.startswith(HTTP_MODULES) and not name.startswith(ALLOWED)]
    assert http == [], f"{path.relative_to(PACKAGE)} imports {http}: requests and pages belong to taskops.admin"


def test_no_module_outgrows_a_screenful_of_ideas() -> None:
    modules = [path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts]
    too_long = {
        str(path.relative_to(PACKAGE)): n for path in modules if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert modules
    assert too_long == {}
