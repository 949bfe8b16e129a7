"""taskops' models, one module per concern; every name importable from ``taskops.models``.

- :mod:`~taskops.models.dispatch`: ``Dispatch`` and ``ObjectRef``, and the value types (state, drift, policies);
- :mod:`~taskops.models.redispatch`: ``Redispatch`` and ``RedispatchItem``, the audit of operator actions;
  ``RedispatchTicket``, what the admin keeps between an operator's steps;
- :mod:`~taskops.models.alerts`: ``AlertRule`` and ``Alert``.
"""

from __future__ import annotations

from taskops.models.alerts import Alert, AlertRule, Channel, Condition
from taskops.models.dispatch import (
    FINISHED_STATES,
    Dispatch,
    Drift,
    MissingPolicy,
    ObjectRef,
    Source,
    StalePolicy,
    State,
)
from taskops.models.redispatch import Redispatch, RedispatchItem, RedispatchTicket

__all__ = [
    "FINISHED_STATES",
    "Alert",
    "AlertRule",
    "Channel",
    "Condition",
    "Dispatch",
    "Drift",
    "MissingPolicy",
    "ObjectRef",
    "Redispatch",
    "RedispatchItem",
    "RedispatchTicket",
    "Source",
    "StalePolicy",
    "State",
]
