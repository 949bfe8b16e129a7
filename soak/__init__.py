"""``make soak``: taskops under faults, end to end, then reconciled row by row.

``python -m soak`` runs :mod:`soak.run` once per stack (PostgreSQL + Redis,
PostgreSQL + RabbitMQ), each in a process of its own. ``docs/reliability.md``
says what is promised and the figures of the last run.
"""
