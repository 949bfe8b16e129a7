"""Benchmarks: ``make bench`` (``python -m bench``) runs every module's ``main()``.

They run the host project in development mode, the mode their figures were
measured in (admin pages through the test client, static files from the
finders): the project's settings default to ``DEBUG`` off, and then refuse
to start without ``SECRET_KEY``. Set here, on the package, so that every
``python -m bench.<name>`` and the worker processes it starts inherit it.
"""

from __future__ import annotations

import os

os.environ["DEBUG"] = "1"
