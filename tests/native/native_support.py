"""Calls into logpipe._native as the parse stage makes them, for the tests of the Rust boundary."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from logpipe._native import Context, Normaliser
from logpipe.parse.normalise import compile_profile
from logpipe.parse.profiles import PYTHON_JSON

READ_TIME_US = 1_700_000_000_000_000


def normaliser() -> Normaliser:
    """The python-json-logger normaliser with a host label, as the agent compiles it."""
    return compile_profile(PYTHON_JSON, {"host": "test-host"})


def int64s(values: Sequence[int]) -> bytes:
    return np.asarray(values, dtype=np.int64).tobytes()


def cuts_of(lines: Sequence[bytes]) -> list[int]:
    """The n+1 cuts of `lines` laid back to back."""
    cuts = [0]
    for line in lines:
        cuts.append(cuts[-1] + len(line))
    return cuts


def call_normalise(
    data: Any, cuts: Sequence[int], offsets: Sequence[int], n: Normaliser | None = None
) -> dict[str, Any]:
    """`Normaliser.normalise` over `data` (any buffer) cut at `cuts`, a fresh request context."""
    return (n or normaliser()).normalise(
        Context(1000, 3600), data, int64s(cuts), int64s(offsets), None, "/app.log", "k", READ_TIME_US, -1
    )


def column(out: dict[str, Any], name: str) -> list[Any]:
    """A string or int64 column of `normalise`'s output as Python values (None for nulls)."""
    validity, _, offsets, values = out[name]
    if offsets is None:
        items: list[Any] = np.frombuffer(values, dtype=np.int64).tolist()
    else:
        ends = np.frombuffer(offsets, dtype=np.int32).tolist()
        raw = bytes(values)
        items = [raw[a:b].decode("utf-8") for a, b in itertools.pairwise(ends)]
    if validity is None:
        return items
    bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
    return [v if bits[i] else None for i, v in enumerate(items)]
