"""taskops: see what your Celery tasks ran on, and whether it was stale."""

from __future__ import annotations

__version__ = "0.1.0"
