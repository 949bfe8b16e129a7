"""The Django admin of taskops: ``DispatchAdmin`` and what its pages show.

Django's admin autodiscovery imports this package; importing ``options``
registers ``DispatchAdmin`` on the default admin site, importing ``alerts``
registers ``AlertRuleAdmin`` and ``AlertAdmin``. Importing costs no query.
The modules, by page:

- ``options``: ``DispatchAdmin``, its URLs, views and override points;
- the changelist: ``changelist``, ``filters``, ``search``, ``celery_names``
  (filter choices), ``paginator``;
- the detail page: ``detail``, ``arguments`` (the pretty-printed arguments);
- an object's task history: ``history``;
- the dashboard: ``dashboard.queries``, ``dashboard.charts``, ``dashboard.table``,
  ``dashboard.alerts`` (its open alerts);
- alerts and their rules: ``alerts`` (the ModelAdmins), ``alert_form``, ``alert_display``;
- re-dispatch: ``redispatch`` (the generic form, both bulk actions,
  ``RedispatchAdmin`` and each re-dispatch's progress page);
- on every page: ``pages`` (permission check, URLs, templates, context of
  taskops' own views), ``display`` (badges, durations), ``links`` (object links),
  ``visibility`` (who may see what of other models' rows), ``objects`` (a
  pk as typed, a row's inheritance chain), ``params`` (URL parameters no
  column can hold are a 400).
"""

from __future__ import annotations

from taskops.admin.alerts import AlertAdmin, AlertRuleAdmin
from taskops.admin.options import DispatchAdmin

__all__ = ["AlertAdmin", "AlertRuleAdmin", "DispatchAdmin"]
