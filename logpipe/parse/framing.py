"""Cut a RawBatch into lines with their absolute byte offsets, columnar, without a Python loop.

A UTF-8 byte-order mark at the start of a file is not part of its first line (offsets stay
true); CRLF endings keep their CR, which JSON reads as whitespace; empty lines and lone CRs are
dropped without a dead letter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from logpipe.limits import DEAD_LETTER_HEAD_BYTES, MAX_LINE_BYTES
from logpipe.model import RawBatch, Reject

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(slots=True)
class Framed:
    """Non-blank, valid UTF-8 lines of a batch and their absolute offsets."""

    lines: pa.Array  # string
    offsets: pa.Array  # int64
    rejects: list[Reject] = field(default_factory=list)


def frame(batch: RawBatch) -> Framed:
    """Split `batch.data` into lines. Blank lines are dropped; bad UTF-8 and oversized lines rejected.

    The cutting runs natively (native/src/framing.rs): the kept lines come back copied end to end,
    which is exactly the layout of an Arrow string array.
    """
    import pyarrow as pa

    from logpipe._native import frame as native_frame

    rejects = [
        Reject(o.offset, "line_too_long", f"{o.length} bytes", o.head[:DEAD_LETTER_HEAD_BYTES]) for o in batch.oversized
    ]
    data, cuts, offsets, bad = native_frame(batch.data, batch.start, MAX_LINE_BYTES, DEAD_LETTER_HEAD_BYTES)
    rejects.extend(Reject(offset, reason, detail, head) for offset, reason, detail, head in bad)
    n = len(offsets) // 8
    lines = pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(cuts), pa.py_buffer(data)])
    offsets_array = pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(offsets)])
    return Framed(lines, offsets_array, rejects)
