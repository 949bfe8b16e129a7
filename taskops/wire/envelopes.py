"""The envelopes taskops adds to kombu's JSON, and the placeholders decoding yields.

Each placeholder knows its own envelope (``__json__``, which kombu's encoder
honours), so decoded arguments that are sent on unchanged (a chain's next
step, a retry) encode back to exactly what arrived.

A placeholder can reach code outside taskops: a plain ``celery.result.AsyncResult``,
Flower's result API, a log line. So each reads as what it stands for
(``repr``: ``<demo.answer:18>``; ``str``: ``demo.answer:18``), never as
taskops' own classes.
"""

from __future__ import annotations

from typing import Any

import attrs

from taskops.wire.refs import ModelRef

MODEL = "taskops.model"
MODELS = "taskops.models"
ATTRS = "taskops.attrs"
#: Never produced by the encoder: what the decoder puts where it refused a subtree.
INVALID = "taskops.invalid"
#: Never produced by the encoder: what a recorded dispatch stores in place of a
#: value it must not keep (``TASKOPS["REDACT_KWARGS"]``). Sent again, it decodes
#: to :class:`Invalid`, so a replay fails instead of running with a made-up value.
REDACTED = "taskops.redacted"
#: The error a redacted value decodes to (a replay tells it from other refusals by it).
REDACTED_ERROR = "a value redacted when it was recorded (TASKOPS['REDACT_KWARGS']) cannot be sent again"


def envelope(marker: str, value: Any) -> dict[str, Any]:
    """kombu's ``{"__type__": marker, "__value__": value}``."""
    return {"__type__": marker, "__value__": value}


@attrs.frozen(repr=False)
class RefPlaceholder:
    """A ``taskops.model`` envelope, not fetched yet."""

    ref: ModelRef

    def __repr__(self) -> str:
        return f"<{self.ref}>"

    def __str__(self) -> str:
        return str(self.ref)

    def __json__(self) -> dict[str, Any]:
        return envelope(MODEL, {"model": self.ref.label, "pk": self.ref.pk})


@attrs.frozen(repr=False)
class RefListPlaceholder:
    """A ``taskops.models`` envelope, not fetched yet."""

    label: str
    pks: tuple[Any, ...]

    def __repr__(self) -> str:
        return f"<{self}>"

    def __str__(self) -> str:
        return f"{self.label}:[{', '.join(map(str, self.pks))}]"

    @property
    def refs(self) -> list[ModelRef]:
        return [ModelRef(self.label, pk) for pk in self.pks]

    def __json__(self) -> dict[str, Any]:
        return envelope(MODELS, {"model": self.label, "pks": list(self.pks)})


@attrs.frozen(repr=False)
class AttrsPlaceholder:
    """A ``taskops.attrs`` envelope: structured once its refs are fetched."""

    cls: type
    name: str
    data: Any

    def __repr__(self) -> str:
        return f"<{self.name} {self.data!r}>"

    def __str__(self) -> str:
        return f"{self.name} {self.data}"

    def __json__(self) -> dict[str, Any]:
        return envelope(ATTRS, {"class": self.name, "data": self.data})


@attrs.frozen(repr=False)
class Invalid:
    """Something on the wire that must not be decoded; using it raises ``error``."""

    error: str

    def __repr__(self) -> str:
        return f"<invalid: {self.error}>"

    def __str__(self) -> str:
        return f"invalid: {self.error}"

    def __json__(self) -> dict[str, Any]:
        return envelope(INVALID, self.error)


#: Every placeholder type: what :func:`taskops.wire.resolve` replaces.
PLACEHOLDERS = (RefPlaceholder, RefListPlaceholder, AttrsPlaceholder, Invalid)
