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

# Every pattern here runs in time linear in the text, hostile text included: a
# backslash pair is consumed as a token of its own, so an escaped quote never
# starts a string match, and a string that is never closed fails once, not once
# per quote after it (a pattern that restarted at each quote was quadratic).
_ESCAPE = re.compile(r"\\.", re.DOTALL)
_BARE_STRING = re.compile(r'"[^"]*+"')
_WHITESPACE = re.compile(r"\s+")
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
#: One match per bracket; strings and everything between brackets are skipped by the regex itself.
#: The text after the last bracket is one final match (group 1 None): a match that could fail there
#: would be retried at every later position.
_TOKEN = re.compile(r'(?:"(?:[^"\\]|\\.)*+"|(?:[^"\[\]{}\\]|\\.)++|"|\\)*+(?:([\[\]{}])|\Z)', re.DOTALL)
_ONE_KIND = str.maketrans("{}", "[]")


@attrs.frozen
class Limits:
    """What one message may hold; from ``TASKOPS``, cached until the setting changes."""

    max_depth: int
    max_nodes: int
    max_refs: int
    #: Length of a body (bytes, or characters of text) over which it is refused unparsed.
    max_bytes: int
    #: Lower-case model labels that may travel; None allows every installed model.
    allowed_models: frozenset[str] | None

    @classmethod
    def from_settings(cls) -> Limits:
        allowed = taskops_settings.ALLOWED_MODELS
        return cls(
            taskops_settings.MAX_DEPTH,
            taskops_settings.MAX_NODES,
            taskops_settings.MAX_REFS,
            taskops_settings.MAX_BYTES,
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
        sendable_label.cache_clear()


setting_changed.connect(_forget_limits, dispatch_uid="taskops.wire.limits")


@functools.lru_cache(maxsize=256)  # bounded: labels come from the wire
def installed_model(label: str) -> type[Model] | None:
    """The installed model of a wire label, or None (never raises)."""
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        return None


@functools.cache  # keyed by model classes (finite); cleared with the limits
def sendable_label(model: type[Model]) -> str | None:
    """The wire label of ``model`` if it may travel (``ALLOWED_MODELS``), else None: checked once per model."""
    label = model._meta.label_lower
    allowed = current_limits().allowed_models
    return label if allowed is None or label in allowed else None


def measure(text: str, limits: Limits) -> tuple[bool, int]:
    """(deeper than allowed, number of JSON values); linear, C-level work only (counts, replaces, regexes).

    Text that is not balanced JSON is left to the parser to refuse.
    """
    openings = text.count("[") + text.count("{")
    # Fast path, the usual task message: too few brackets to be too deep,
    # too short to hold too many values (each value takes at least two characters).
    if openings <= limits.max_depth and (len(text) + 1) // 2 <= limits.max_nodes:
        return False, 0
    # Whitespace goes by a regex, not str.split(): a split of a large body makes
    # one string object per token (an 89 MB body: over 900 MB).
    skeleton = _WHITESPACE.sub("", _BARE_STRING.sub("0", _ESCAPE.sub("", text)))
    # Values: the root, one per comma, one more per non-empty container.
    nonempty = skeleton.count("[") + skeleton.count("{") - skeleton.count("[]") - skeleton.count("{}")
    nodes = 1 + skeleton.count(",") + nonempty
    if nodes > limits.max_nodes:
        return False, nodes  # replaced whole: its depth does not matter
    # One kind of bracket (a mismatch is the parser's to refuse), then one level of pairs off per pass.
    brackets = _NOT_BRACKET.sub("", skeleton).translate(_ONE_KIND)
    for _ in range(limits.max_depth):
        shorter = brackets.replace("[]", "")
        if not shorter or len(shorter) == len(brackets):
            return False, nodes
        brackets = shorter
    return True, nodes


def cut_too_deep(text: str, max_depth: int) -> str:
    """``text`` with every container nested deeper than ``max_depth`` replaced by an invalid marker."""
    marker = json.dumps(envelope(INVALID, f"nested more than {max_depth} levels deep (TASKOPS['MAX_DEPTH'])"))
    parts: list[str] = []
    depth = 0
    cut_from = -1
    kept_up_to = 0
    for match in _TOKEN.finditer(text):
        char = match.group(1)
        if char is None:
            break
        if char in "[{":
            depth += 1
            if depth == max_depth + 1:
                cut_from = match.start(1)
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


def within_limits(text: str, limits: Limits) -> str:
    """``text`` as the parser may take it: whole, with its too-deep subtrees cut, or replaced.

    Linear in the text whatever it holds. A body over ``MAX_NODES`` is
    replaced whole; a too-deep one has its deep subtrees cut where they are,
    unless it holds so many brackets that walking them would cost more than
    the message is worth (then it is replaced whole too).
    """
    too_deep, nodes = measure(text, limits)
    if nodes > limits.max_nodes:
        return stand_in(text, f"{nodes} values, more than {limits.max_nodes} (TASKOPS['MAX_NODES'])")
    if not too_deep:
        return text
    if text.count("[") + text.count("{") <= EXACT_CUT_BRACKETS:
        return cut_too_deep(text, limits.max_depth)
    return stand_in(text, f"nested more than {limits.max_depth} levels deep (TASKOPS['MAX_DEPTH'])")


#: Openings up to which a too-deep body is cut where it is too deep (a Python step per bracket).
EXACT_CUT_BRACKETS = 20_000


def too_long(payload: str | bytes, limits: Limits) -> str | None:
    """The stand-in for a body over ``MAX_BYTES``, or None: a length check, before any decoding or scan.

    What a larger body costs is then only the copies the transport made of it.
    """
    if len(payload) <= limits.max_bytes:
        return None
    head = payload[:64].decode("utf-8", "ignore") if isinstance(payload, bytes) else payload[:64]
    return stand_in(head, f"a body of {len(payload)} bytes, more than {limits.max_bytes} (TASKOPS['MAX_BYTES'])")


def stand_in(text: str, error: str) -> str:
    """A body replaced whole by an invalid marker: the task runs and fails with ``error``.

    Only the start of ``text`` is read (is it a list?).
    """
    marker = envelope(INVALID, error)
    if text[:64].lstrip().startswith("["):
        # Keep the shape of a task message body, [args, kwargs, embed], so that
        # the worker runs the task and the task fails with this error.
        return json.dumps([[marker], {}, {}])
    return json.dumps(marker)
