"""Which free-text columns may hold a common word: so its search reads `message` alone.

Free text matches a needle in `message`, `error` or `attrs` (`filters.Text`). A word the parts'
text summaries cannot rule out of any block (a common one: "checkout" in one line in 8) is
looked for in every row, and DuckDB then evaluates the OR of the three columns row by row: no
part of it is pushed into the Parquet scan, so all three columns are decoded for every row and
every other column the statement reads too, a third more time than `message` alone at 10M records.

`error` (mostly empty) and `attrs` (often `{}`) are small, so whether any row of a part holds the
needle there is cheap to ask: `"error" ILIKE ?` alone is pushed into the scan (DuckDB evaluates it
once per dictionary entry). The answer is kept per part and needle (a part is written once and
never changed) and a column no read part holds the needle in is left out of the filter's SQL
(`filters.to_sql(..., holding)`): the rows it matches are the same. `message` is always searched.

When the summaries leave most blocks out (a rare word), nothing is asked: the OR then runs over
the few candidate rows only, cheaper than a probe of every part.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from logpipe.read.filters import FREE_TEXT_FIELDS, Filter, Text, ilike_sql, like_pattern

if TYPE_CHECKING:
    import duckdb

# The columns asked about; `message` (large, where free text mostly lies) is always searched.
PROBED_COLUMNS: Final = tuple(c for c in FREE_TEXT_FIELDS if c != "message")
_PROBE_SQL: Final = 'SELECT DISTINCT "filename" FROM read_parquet(?, filename = true) WHERE {match}'
# (path, size, mtime_ns, column, needle) -> whether some row of that part holds the needle there.
_HELD: dict[tuple[str, int, int, str, str], bool] = {}
_HELD_LOCK: Final = threading.Lock()
_HELD_MAX: Final = 100_000
# A needle whose candidate blocks hold at least this share of the rows is common: asking which
# columns hold it costs a small part of its search. A rarer one is searched in its few blocks as is.
COMMON_SHARE: Final = 0.25


def holding(con: duckdb.DuckDBPyConnection, flt: Filter) -> Mapping[str, Sequence[str]] | None:
    """For each free-text needle of `flt` that the parts' summaries cannot narrow, the columns
    that hold it in some part `logs` reads (`message` always); None to search every column."""
    from logpipe.archive.reader import log_parts

    if not is_common(con, flt):
        return None  # a rare needle: the OR runs over its few candidate rows only
    needles = sorted({t.needle for t in flt.terms if isinstance(t, Text)})
    parts = log_parts(con) or ()
    keys = {p: _part_key(p) for p in parts}
    return {n: ("message", *(c for c in PROBED_COLUMNS if _held_anywhere(con, keys, c, n))) for n in needles}


def is_common(con: duckdb.DuckDBPyConnection, flt: Filter) -> bool:
    """Whether `flt` has free text the parts' summaries leave at least COMMON_SHARE of the rows
    of the parts `logs` reads to look in (False for a connection whose parts are not known)."""
    from logpipe.archive.reader import log_parts

    needles = [t.needle for t in flt.terms if isinstance(t, Text)]
    parts = log_parts(con)
    return bool(needles and parts) and candidate_share(con, parts or (), needles) >= COMMON_SHARE


def candidate_share(con: duckdb.DuckDBPyConnection, parts: Sequence[Path], needles: Sequence[str]) -> float:
    """The share of the parts' rows the text summaries leave to read for these needles (1.0
    when they cannot tell: a needle below three code points, no summary)."""
    from logpipe.archive.reader import part_summaries
    from logpipe.archive.textindex import candidate_rows, needle_keys

    keys = [k for k in (needle_keys(n) for n in needles) if k]
    if not keys:
        return 1.0
    rows = read = 0
    for total, blocks in part_summaries(con, parts).values():
        if total is None or blocks is None:
            return 1.0  # a part read whole, of rows not known here
        rows += total
        read += sum(end - start for start, end in candidate_rows(blocks, keys))
    return read / rows if rows else 1.0


def _part_key(part: Path) -> tuple[str, int, int]:
    st = os.stat(part)
    return (str(part), st.st_size, st.st_mtime_ns)


def _held_anywhere(
    con: duckdb.DuckDBPyConnection, keys: Mapping[Path, tuple[str, int, int]], column: str, needle: str
) -> bool:
    """Whether some row of these parts holds `needle` in `column` (only parts not asked before are read)."""
    with _HELD_LOCK:
        known = {p: _HELD.get((*k, column, needle)) for p, k in keys.items()}
    if any(known.values()):
        return True
    unknown = [p for p, held in known.items() if held is None]
    if not unknown:
        return False
    assert column in PROBED_COLUMNS  # the allow-list: never a name from the user
    match = ilike_sql(column, needle)
    rows = con.execute(_PROBE_SQL.format(match=match), [[str(p) for p in unknown], like_pattern(needle)]).fetchall()
    found = {str(name) for (name,) in rows}
    asked = {str(p) for p in unknown}
    # A name DuckDB spelt otherwise than it was given cannot be placed: every part asked then holds it.
    placed = found <= asked
    with _HELD_LOCK:
        if len(_HELD) + len(unknown) > _HELD_MAX:
            _HELD.clear()
        for part in unknown:
            _HELD[(*keys[part], column, needle)] = str(part) in found or not placed
    return bool(found)
