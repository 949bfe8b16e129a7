"""The library's tests stand alone: no test uses the host project or its demo.

``tests/project/`` is the exception: it tests the host project itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
FORBIDDEN = {"config", "demo"}


def is_dotted(text: str) -> bool:
    """``text`` starts like a module path: ``config``, ``demo.tasks.x``, ``demo.question:42``."""
    return text.partition(".")[0].isidentifier()


def named_modules(tree: ast.AST) -> list[str]:
    """Modules the code imports, anywhere in the tree, and the dotted paths its strings name.

    Strings count because a module can be used without an import statement:
    ``celery -A config``, ``DJANGO_SETTINGS_MODULE="config.settings"``, a task
    name such as ``"demo.tasks.count_words"``. Relative imports are the
    package's own.
    """
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and is_dotted(node.value):
            names.append(node.value)
    return names


def forbidden_names(source: str) -> list[str]:
    return [name for name in named_modules(ast.parse(source)) if name.split(".")[0] in FORBIDDEN]


def library_test_files() -> list[Path]:
    """Every module under ``tests/`` but ``tests/project/`` and this one (which names them on purpose)."""
    return sorted(
        path
        for path in TESTS_DIR.rglob("*.py")
        if "project" not in path.relative_to(TESTS_DIR).parts and path != Path(__file__).resolve()
    )


def test_no_library_test_uses_the_host_project_or_the_demo() -> None:
    files = library_test_files()
    found = {
        str(path.relative_to(TESTS_DIR)): names
        for path in files
        if (names := forbidden_names(path.read_text(encoding="utf-8")))
    }

    assert TESTS_DIR / "settings.py" in files
    assert TESTS_DIR / "testapp" / "tasks.py" in files
    assert found == {}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import config.settings", ["config.settings"]),
        ("from demo.models import Question", ["demo.models"]),
        ("def f():\n    from config import celery_app", ["config"]),
        ("import demo as d", ["demo"]),
        ('command = ["celery", "-A", "config", "worker"]', ["config"]),
        ('env = {"DJANGO_SETTINGS_MODULE": "config.settings"}', ["config.settings"]),
        ('make_dispatch(task_name="demo.tasks.count_words")', ["demo.tasks.count_words"]),
        ("from tests.testapp import models\nimport configparser\nfrom . import demo", []),
        ('text = "a demo of the config"; label = "testapp.question"', []),
    ],
)
def test_the_guard_sees_every_way_of_naming_a_module(source: str, expected: list[str]) -> None:
    assert forbidden_names(source) == expected
