"""Admin registrations of taskops."""

from __future__ import annotations
