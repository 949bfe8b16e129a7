"""``{% partialdef %}`` on every supported Django: ``{% load taskops_partials %}``.

Django 6 has template partials built in; on Django 5.2 they come from
django-template-partials, whose tags must be loaded. Loading this library
works on both, so taskops' templates need no version switch.
"""

from __future__ import annotations

import django
from django import template

register: template.Library
if django.VERSION >= (6, 0):
    register = template.Library()  # the tags are builtins
else:
    from template_partials.templatetags import partials

    register = partials.register
