"""Cut a RawBatch into lines with their absolute byte offsets, columnar, without a Python loop.

The fast path wraps the batch bytes in one Arrow binary value, splits on newlines in C++ and
validates UTF-8 for the whole batch at once. Only a batch that contains invalid UTF-8 falls back
to a per-line loop, to find which lines to reject.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from logpipe.parse.limits import DEAD_LETTER_HEAD_BYTES, MAX_LINE_BYTES, UTF8_BOM
from logpipe.sources.batch import RawBatch

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


@dataclass(frozen=True, slots=True)
class Reject:
    """One input line that cannot become a record, with why."""

    offset: int
    reason: str
    detail: str
    raw: bytes


@dataclass(slots=True)
class Framed:
    """Non-blank, valid UTF-8 lines of a batch and their absolute offsets."""

    lines: pa.Array  # string
    offsets: pa.Array  # int64
    rejects: list[Reject] = field(default_factory=list)


def frame(batch: RawBatch) -> Framed:
    """Split `batch.data` into lines. Blank lines are dropped; bad UTF-8 and oversized lines rejected."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rejects = [
        Reject(o.offset, "line_too_long", f"{o.length} bytes", o.head[:DEAD_LETTER_HEAD_BYTES])
        for o in batch.oversized
    ]
    data = batch.data
    if batch.start == 0 and data.startswith(UTF8_BOM):
        # Blank the BOM out (whitespace is valid JSON padding) so every offset stays true.
        data = b"   " + data[len(UTF8_BOM) :]
    if not data:
        return Framed(pa.array([], pa.string()), pa.array([], pa.int64()), rejects)

    # Zero-copy: one large_binary value whose data buffer is the batch bytes themselves.
    whole = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(),
        1,
        [None, pa.py_buffer(np.array([0, len(data)], dtype=np.int64)), pa.py_buffer(data)],
    )
    values = pc.split_pattern(whole, pattern=b"\n")[0].values
    if data.endswith(b"\n"):
        values = values.slice(0, len(values) - 1)
    lengths = pc.binary_length(values).to_numpy(zero_copy_only=False).astype(np.int64)
    starts = np.empty(len(lengths), dtype=np.int64)
    if len(lengths):
        starts[0] = batch.start
        np.cumsum(lengths[:-1] + 1, out=starts[1:])
        starts[1:] += batch.start
    offsets = pa.array(starts, pa.int64())

    # Blank lines (empty or a lone CR) carry nothing: drop them without a dead letter.
    blank = (lengths == 0) | ((lengths == 1) & _ends_with_cr(data, starts - batch.start, lengths))
    # Lines that fit in one read but exceed the limit (longer ones are cut by the source).
    oversized = lengths > MAX_LINE_BYTES
    for i in np.flatnonzero(oversized):
        head = data[starts[i] - batch.start : starts[i] - batch.start + DEAD_LETTER_HEAD_BYTES]
        rejects.append(Reject(int(starts[i]), "line_too_long", f"{int(lengths[i])} bytes", head))
    drop = blank | oversized
    if drop.any():
        keep = pa.array(~drop)
        values = values.filter(keep)
        offsets = offsets.filter(keep)

    try:
        lines = values.cast(pa.large_string())
    except pa.ArrowInvalid:
        lines, offsets, bad = _split_invalid_utf8(values, offsets)
        rejects.extend(bad)
    return Framed(lines, offsets, rejects)


def _ends_with_cr(data: bytes, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """For each line, is its last byte a CR? (Lines of length 0 answer False.)"""
    import numpy as np

    buf = np.frombuffer(data, dtype=np.uint8)
    last = np.clip(starts + lengths - 1, 0, max(len(buf) - 1, 0))
    ends: np.ndarray = (lengths > 0) & (buf[last] == 13)
    return ends


def _split_invalid_utf8(values: pa.Array, offsets: pa.Array) -> tuple[pa.Array, pa.Array, list[Reject]]:
    """Slow path for a batch with bad UTF-8: find the guilty lines one by one."""
    import pyarrow as pa

    good_lines: list[str] = []
    good_offsets: list[int] = []
    rejects: list[Reject] = []
    for raw, off in zip(values.to_pylist(), offsets.to_pylist(), strict=True):
        try:
            good_lines.append(raw.decode("utf-8"))
            good_offsets.append(off)
        except UnicodeDecodeError as exc:
            rejects.append(Reject(off, "invalid_utf8", str(exc), raw[:DEAD_LETTER_HEAD_BYTES]))
    return pa.array(good_lines, pa.large_string()), pa.array(good_offsets, pa.int64()), rejects
