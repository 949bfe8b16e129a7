"""What one message may hold, and the cheap checks of size and depth run on
the text before it is parsed (the consumer loop decodes every message)."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import attrs
from django.apps import apps
from django.core.signals import setting_changed
from django.db.models import Model

from taskops.conf import taskops_settings
from taskops.wire.envelopes import INVALID, envelope

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_WHITESPACE = re.compile(r"\s+")
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST_PAIR = re.compile(r"\[\]|\{\}")
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


@attrs.frozen
class Limits:
    """What one message may hold; from ``TASKOPS``, cached until the setting changes."""

    max_depth: int
    max_nodes: int
    max_refs: int
    #: Lower-case model labels that may travel; None allows every installed model.
    allowed_models: frozenset[str] | None

    @classmethod
    def from_settings(cls) -> Limits:
        allowed = taskops_settings.ALLOWED_MODELS
        return cls(
            taskops_settings.MAX_DEPTH,
            taskops_settings.MAX_NODES,
            taskops_settings.MAX_REFS,
            None if allowed is None else frozenset(str(label).lower() for label in allowed),
        )


@functools.cache
def current_limits() -> Limits:
    """The limits in force (read once, until ``TASKOPS`` changes)."""
    return Limits.from_settings()


def _forget_limits(*, setting: str, **kwargs: Any) -> None:
    if setting == "TASKOPS":
        current_limits.cache_clear()
        installed_model.cache_clear()


setting_changed.connect(_forget_limits, dispatch_uid="taskops.wire.limits")


@functools.lru_cache(maxsize=256)  # bounded: labels come from the wire
def installed_model(label: str) -> type[Model] | None:
    """The installed model of a wire label, or None (never raises)."""
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        return None


def measure(text: str, limits: Limits) -> tuple[bool, int]:
    """(deeper than allowed, number of JSON values); cheap: C-level regexes and counts only."""
    openings = text.count("[") + text.count("{")
    # Fast path, the usual task message: too few brackets to be too deep,
    # too short to hold too many values (each value takes at least two characters).
    if openings <= limits.max_depth and (len(text) + 1) // 2 <= limits.max_nodes:
        return False, 0
    skeleton = _WHITESPACE.sub("", _STRING.sub("0", text))
    # Values: the root, one per comma, one more per non-empty container.
    nonempty = skeleton.count("[") + skeleton.count("{") - skeleton.count("[]") - skeleton.count("{}")
    nodes = 1 + skeleton.count(",") + nonempty
    brackets = _NOT_BRACKET.sub("", skeleton)
    for _ in range(limits.max_depth):
        if not brackets:
            return False, nodes
        brackets = _INNERMOST_PAIR.sub("", brackets)
    return bool(brackets), nodes


def cut_too_deep(text: str, max_depth: int) -> str:
    """``text`` with every container nested deeper than ``max_depth`` replaced by an invalid marker."""
    marker = json.dumps(envelope(INVALID, f"nested more than {max_depth} levels deep (TASKOPS['MAX_DEPTH'])"))
    parts: list[str] = []
    depth = 0
    cut_from = -1
    kept_up_to = 0
    for match in _TOKEN.finditer(text):
        char = match.group()[0]
        if char == '"':
            continue
        if char in "[{":
            depth += 1
            if depth == max_depth + 1:
                cut_from = match.start()
        else:
            if depth == max_depth + 1 and cut_from >= 0:
                parts += [text[kept_up_to:cut_from], marker]
                kept_up_to, cut_from = match.end(), -1
            depth -= 1
    if cut_from >= 0:  # never closed: not JSON; drop the rest so the parser fails rather than recursing
        parts += [text[kept_up_to:cut_from], marker]
        return "".join(parts)
    parts.append(text[kept_up_to:])
    return "".join(parts)


def too_big(text: str, nodes: int, limits: Limits) -> str:
    """A stand-in for a body over ``MAX_NODES``: the task runs and fails with this error."""
    marker = envelope(INVALID, f"{nodes} values, more than {limits.max_nodes} (TASKOPS['MAX_NODES'])")
    if text.lstrip().startswith("["):
        # Keep the shape of a task message body, [args, kwargs, embed], so that
        # the worker runs the task and the task fails with this error.
        return json.dumps([[marker], {}, {}])
    return json.dumps(marker)
