"""The old home of the codec, kept so that ``taskops.codec.CodecError`` and the
other names the README showed keep working. The codec lives in :mod:`taskops.wire`."""

from __future__ import annotations

from taskops.wire import (
    AttrsPlaceholder,
    CodecError,
    Invalid,
    MissingObjectError,
    RefListPlaceholder,
    RefPlaceholder,
    decode,
    dumps,
    install,
    loads,
    resolve,
)
from taskops.wire.envelopes import ATTRS, MODEL, MODELS

__all__ = [
    "ATTRS",
    "MODEL",
    "MODELS",
    "AttrsPlaceholder",
    "CodecError",
    "Invalid",
    "MissingObjectError",
    "RefListPlaceholder",
    "RefPlaceholder",
    "decode",
    "dumps",
    "install",
    "loads",
    "resolve",
]
