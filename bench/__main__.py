"""Run every benchmark module of this package that has a ``main()``, in name order."""

from __future__ import annotations

import importlib
import os
import pkgutil

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    import bench

    for module_info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda info: info.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{module_info.name}")
        run = getattr(module, "main", None)
        if callable(run):
            print(f"== bench.{module_info.name}")
            run()


if __name__ == "__main__":
    main()
