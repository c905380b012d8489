"""The compaction journal: read and checked before anything is done by it.

Compaction (compact.py) writes `state/compaction.json` naming the merged part it is about to
write and the parts that part replaces. Recovery acts on it and readers consult it, so it is
read here, without the weight of the writer: a query imports this module, not compaction.

The journal is data on disk, so it is checked before anything is done by it: every path must be
a plain relative path of the archive's layout (no `..`, nothing absolute, no link on the way,
names that compaction writes, all in one partition) that resolves under the archive's real path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson

from logpipe.archive.layout import (
    DEAD_LETTERS_DIR,
    LOGS_DIR,
    STATE_DIR,
    is_level_dir_name,
    is_part_name,
    parse_day_dir,
)
from logpipe.errors import ArchiveError

JOURNAL: Final = "compaction.json"


class JournalError(ArchiveError):
    """The compaction journal names something compaction would never have written."""


def journal_path(archive: Path) -> Path:
    return archive / STATE_DIR / JOURNAL


@dataclass(frozen=True, slots=True)
class Journal:
    """A checked journal: the merged part and the parts it replaces, relative to the archive."""

    new: str
    old: tuple[str, ...]


def read_journal(archive: Path) -> Journal | None:
    """The journal if there is one; JournalError if it names anything compaction would not write."""
    path = journal_path(archive)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise JournalError(f"compaction journal {path} is not JSON ({exc}); left as it is") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("new"), str) or not isinstance(doc.get("old"), list):
        raise JournalError(f"compaction journal {path} is not a journal (needs `new` and `old`); left as it is")
    journal = Journal(doc["new"], tuple(doc["old"]))
    problem = journal_problem(archive, journal)
    if problem is not None:
        raise JournalError(f"compaction journal {path}: {problem}; nothing done by it, left as it is")
    return journal


def journal_problem(archive: Path, journal: Journal) -> str | None:
    """Why this journal must not be acted on, or None when every path is one compaction writes."""
    paths = [journal.new, *journal.old]
    for rel in paths:
        problem = _path_problem(archive, rel)
        if problem is not None:
            return problem
    if len({str(Path(p).parent) for p in paths}) != 1:
        return "its parts are in different partitions (compaction merges within one)"
    if journal.new in journal.old:
        return f"{journal.new!r} is both the merged part and a part it replaces"
    return None


def _path_problem(archive: Path, rel: object) -> str | None:
    if not isinstance(rel, str) or not rel or "\0" in rel:
        return f"{rel!r} is not a path"
    if rel.startswith("/") or "\\" in rel:
        return f"{rel!r} is not a relative path"
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return f"{rel!r} is not a plain path inside the archive"
    shaped = (
        (
            (len(parts) == 4 and parts[0] == LOGS_DIR and is_level_dir_name(parts[2]))
            or (len(parts) == 3 and parts[0] == DEAD_LETTERS_DIR)
        )
        and parse_day_dir(parts[1]) is not None
        and is_part_name(parts[-1])
    )
    if not shaped:
        return f"{rel!r} is not a part of the archive's layout"
    real_root = os.path.realpath(archive)
    here = archive
    for name in parts[:-1]:  # every folder on the way must be a real folder, not a link
        here = here / name
        if os.path.islink(here):
            return f"{rel!r} passes through a symlink ({here})"
    target = os.path.realpath(archive / rel)
    if os.path.commonpath([real_root, target]) != real_root:
        return f"{rel!r} resolves outside the archive ({target})"
    if os.path.islink(archive / rel):
        return f"{rel!r} is a symlink"
    return None


def pending_replaced(archive: Path, listed: set[Path]) -> set[Path]:
    """Of the parts just `listed`, those a listed merged part already holds: not to be read.

    Call after listing, with the readers' lock held (so neither the replaced parts nor the
    journal can go meanwhile). Only when the merged part is among the listed ones are the parts
    it replaces left out: a listing that ran while it was being renamed in may have missed it,
    and then the replaced parts (all still there) are what holds those rows.
    A bad journal hides nothing: readers then see what is on disk.
    """
    try:
        journal = read_journal(archive)
    except JournalError:
        return set()
    if journal is None or archive / journal.new not in listed:
        return set()
    return {archive / p for p in journal.old}
