"""Re-dispatch: the one service every re-dispatch path calls (the admin form,
the bulk actions, the ``taskops_redispatch`` command), its background fan-out
task and its audit. No HTTP here: the pages live in :mod:`taskops.admin`.

It may import :mod:`taskops.celery` and everything below it, never
:mod:`taskops.admin` (see ``docs/architecture.md``).
"""
