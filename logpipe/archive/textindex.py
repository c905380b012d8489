"""A trigram summary of each block of a part's rows, so `logpipe search` skips blocks a needle cannot be in.

Free text (`filters.Text`) matches when `lower(needle)` is a substring of `lower(value)` for one
of `message`, `error`, `attrs` (DuckDB's ILIKE; `lower` maps a code point to one code point).
The writer summarises each block of up to `TEXT_BLOCK_ROWS` rows (an eighth of a Parquet row
group: a rare word's false positives then cost a slice of a row group, whose other rows DuckDB
does not filter) by the trigrams of those three columns' values, and stores the summaries in the part's footer metadata
under `TEXT_INDEX_METADATA_KEY`, so the summary is written, merged (compaction writes the merged
part's own), and deleted (retention) with the rows it describes: there is nothing to keep in step.

A trigram is three consecutive units of one value, a unit per code point: ASCII lower-cased,
U+0130 and U+212A (the only non-ASCII code points DuckDB's `lower` maps to ASCII) as `i` and `k`,
every other non-ASCII code point as one placeholder (native/src/textindex.rs computes them for
the writer; `needle_keys` here for the search). Units depend on `lower(c)` only, so if a value
matches, each trigram of the needle is among the value's. A block is read unless some trigram of
the needle is surely absent from it (a one-hash bloom filter: false positives only cost a read).
Needles of fewer than three code points have no trigram: every block is read. Parts without a
summary (written before it existed, or by anything else) are always read whole.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import orjson

if TYPE_CHECKING:
    import pyarrow as pa

TEXT_INDEX_METADATA_KEY: Final = b"logpipe.text_index"
INDEX_VERSION: Final = 1
# The columns free text searches (logpipe.read.filters.FREE_TEXT_FIELDS; a test keeps them equal).
INDEXED_COLUMNS: Final = ("message", "error", "attrs")
PLACEHOLDER: Final = 0x80
_TO_ASCII: Final = {0x130: ord("i"), 0x212A: ord("k")}
_MULTIPLIER: Final = 0x9E3779B97F4A7C15
_MASK64: Final = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class Block:
    """`rows` consecutive rows of a part and the bloom filter of their trigrams (2^log2_bits bits)."""

    rows: int
    log2_bits: int
    bloom: bytes

    def may_contain(self, keys: Iterable[int]) -> bool:
        for key in keys:
            bit = (((key | 1 << 32) * _MULTIPLIER) & _MASK64) >> (64 - self.log2_bits)
            if not self.bloom[bit >> 3] >> (bit & 7) & 1:
                return False
        return True


# --- writing ---------------------------------------------------------------------------------


def summarise(table: pa.Table) -> Block | None:
    """The block summary of all of `table`'s rows; None if its text columns are not strings."""
    import pyarrow as pa

    from logpipe import _native

    columns: list[tuple[pa.Buffer, pa.Buffer, int, int, bool]] = []
    for name in INDEXED_COLUMNS:
        if name not in table.column_names:
            return None
        column = table.column(name)
        wide = pa.types.is_large_string(column.type)
        if not (wide or pa.types.is_string(column.type)):
            return None
        for chunk in column.chunks:
            if len(chunk) == chunk.null_count:
                continue  # no text (a null array may carry no buffers at all)
            _, offsets, data = chunk.buffers()
            if offsets is None or data is None:
                continue
            columns.append((offsets, data, chunk.offset, len(chunk), wide))
    log2_bits, bloom, _ = _native.text_bloom(columns)
    return Block(table.num_rows, log2_bits, bloom)


def encode(blocks: Sequence[Block]) -> bytes:
    """The footer value: the blocks in row order, filters compressed (mostly zeros)."""
    doc = {
        "v": INDEX_VERSION,
        "columns": list(INDEXED_COLUMNS),
        "blocks": [[b.rows, b.log2_bits, base64.b64encode(zlib.compress(b.bloom, 1)).decode()] for b in blocks],
    }
    return orjson.dumps(doc)


# --- reading ---------------------------------------------------------------------------------


def decode(raw: bytes | None, num_rows: int) -> list[Block] | None:
    """The blocks of a part of `num_rows` rows, or None (no summary, another version, or one
    that does not describe exactly these rows: then the part is read whole)."""
    if not raw:
        return None
    try:
        doc = orjson.loads(raw)
        if doc.get("v") != INDEX_VERSION or doc.get("columns") != list(INDEXED_COLUMNS):
            return None
        blocks = []
        for rows, log2_bits, packed in doc["blocks"]:
            bloom = zlib.decompress(base64.b64decode(packed))
            if not (isinstance(rows, int) and rows >= 0 and isinstance(log2_bits, int) and 3 <= log2_bits <= 32):
                return None
            if len(bloom) != 1 << (log2_bits - 3):
                return None
            blocks.append(Block(rows, log2_bits, bloom))
    except (ValueError, TypeError, KeyError, AttributeError, zlib.error):
        return None
    if sum(b.rows for b in blocks) != num_rows:
        return None
    return blocks


def _unit(ch: str) -> int:
    code = ord(ch)
    if code < 0x80:
        return ord(ch.lower()) if "A" <= ch <= "Z" else code
    return _TO_ASCII.get(code, PLACEHOLDER)


def needle_keys(needle: str) -> frozenset[int]:
    """The trigram keys every value matching `needle` holds (empty below three code points)."""
    units = [_unit(ch) for ch in needle]
    return frozenset(a << 16 | b << 8 | c for a, b, c in zip(units, units[1:], units[2:], strict=False))


def candidate_rows(blocks: Sequence[Block], needles: Sequence[frozenset[int]]) -> list[tuple[int, int]]:
    """The row ranges [start, end) of the blocks that may hold every needle, adjacent ones joined."""
    out: list[tuple[int, int]] = []
    start = 0
    for block in blocks:
        end = start + block.rows
        if block.rows and all(block.may_contain(keys) for keys in needles):
            if out and out[-1][1] == start:
                out[-1] = (out[-1][0], end)
            else:
                out.append((start, end))
        start = end
    return out
