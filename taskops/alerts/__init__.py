"""Alerts: rules, their evaluation, notification channels and metrics. No HTTP
here: the pages live in :mod:`taskops.admin`.

It may import :mod:`taskops.celery` and everything below it, never
:mod:`taskops.admin` (see ``docs/architecture.md``).
"""
