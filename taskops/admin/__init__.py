"""The Django admin of taskops: ``DispatchAdmin`` and what its pages show.

Django's admin autodiscovery imports this package; importing ``options``
registers ``DispatchAdmin`` on the default admin site.
"""

from __future__ import annotations

from taskops.admin.options import DispatchAdmin

__all__ = ["DispatchAdmin"]
