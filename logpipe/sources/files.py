"""Tail files: discovery by glob, identity by inode and fingerprint, rotation without loss or duplicates.

Identity. A source is one stream of bytes: one file for as long as it is not truncated, whatever
it is renamed to, and its copy once a copy-truncate moves its bytes to a new inode. Its id is
opaque and kept in the checkpoint with how to recognise the file again: device/inode, its path,
and a content fingerprint (`<length>:<hash of the first length bytes>`, up to PREFIX_BYTES,
extended as the file grows). A file found on disk is
- the source of a checkpoint with the same device/inode whose fingerprint it still matches
  (a restart, a rename, a file closed while idle and opened again);
- else, when it is a rotated sibling (same folder, its name starts with the other's name:
  app.log.1 of app.log) and matches the fingerprint of
  - a source being read: a copy of it (copy-truncate's app.log.1 before the truncation). It is
    not read as a file of its own; if the original is truncated, its unread tail is read from it;
  - a checkpoint whose file is gone or no longer matches: that source, moved or copied (a
    copy-truncate, a rename across file systems), finished from its checkpoint;
- else a new source, read from its start. Two live files are never one source, however alike
  they start (`{"level":"INFO","message":"tick"}` as every first line).
A new source's id is the hash of its first line (at most FINGERPRINT_BYTES), as older versions
of logpipe made it, unless a checkpoint or another open file already has that id; then it is a
hash of the first-line hash, device, inode and a counter. Ids are deterministic, so a file
re-read after a crash gets the id it had and the archive drops what it already holds, and
`event_id` (id prefix + offset) is unchanged for files older versions read. Checkpoints of older
versions (no fingerprint) are recognised by the first-line hash that their id is. A file
without a complete first line is not read yet (read to the end, `until="end"`, it is).
An inode alone never identifies a file: a file found under a tracked file's inode is that file
only if it still starts with its fingerprint (a copy may get the inode of a generation that was
just compressed and deleted). Limit: a file that reuses a deleted file's inode and starts with
the same bytes over the whole fingerprint is taken for it while that checkpoint lives.

Rotation.
- rename (app.log -> app.log.1, new app.log): the old file is read to its end before it is let
  go; the new file is a new source, read from its start. A rotated file is held open from the
  moment it is recognised (as rotated away, or at start-up as a rotated sibling with a backlog),
  so that logrotate's next run (app.log.1 -> app.log.2, then deleting app.log.2) cannot take its
  unread lines; one that could not be opened yet (every open-file slot in use) is followed by
  device/inode wherever it goes in its folder.
- copy-truncate: a source file that shrinks, or no longer starts with its fingerprint, was
  truncated; what was not yet read is read from the copy among its siblings, and the truncated
  file is a new source.
- a rotated file's unterminated last line is taken once the file has gone quiet, or when the
  file is let go (gone, or truncated with no copy): no newline can come any more, so it is a
  record if it parses, else a dead letter `unterminated`.
- losses: a warning (`file_lost`) is given only when bytes are certainly lost (a file gone or
  truncated with no copy while bytes it was seen to hold were unread), with their number; where
  a rotated file went is logged (`file_rotated`, "app.log was renamed to app.log.1").
- while the agent is stopped: at start-up, the files of the globs, their rotated siblings, and
  the files of the checkpoints and their siblings are all matched as above; so an unfinished
  source is finished wherever it went (its copy included), and a sibling that no checkpoint
  knows and that changed since shortly before the last commit (a file created and rotated
  away while the agent was down) is read from its start.

Open files are bounded (a quarter of the open-file limit, at most MAX_OPEN_FILES): a file is
opened when it has something to read, and the least recently active idle file is closed to make
room; a closed file is reopened by its device/inode (at its path, else among its siblings) and
its fingerprint checked. Discovery (glob and stat of every file) finds growth in closed files;
it runs at most DISCOVER_DUTY of the time, so an idle agent with many files costs little CPU,
at the price of a longer delay (about 50 times one discovery) before growth of a closed file
is seen.
"""

from __future__ import annotations

import asyncio
import fnmatch
import glob
import hashlib
import io
import logging
import os
import resource
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Final, TypeVar

from logpipe.checkpoints import Checkpoint, CheckpointStore
from logpipe.errors import UsageError
from logpipe.failpoints import pause
from logpipe.limits import DEAD_LETTER_HEAD_BYTES, MAX_LINE_BYTES
from logpipe.model import FormatDetector, OversizedLine, Position, RawBatch

if TYPE_CHECKING:
    from logpipe.sources.base import Delivery, Read, SourceGauges, Until

log = logging.getLogger("logpipe.sources.files")
_T = TypeVar("_T")

FINGERPRINT_BYTES: Final = 1024
PREFIX_BYTES: Final = 4096
READ_BYTES: Final = 8 << 20
ROTATED_IDLE_S: Final = 5.0
MAX_OPEN_FILES: Final = 512
DISCOVER_DUTY: Final = 0.02
MAX_BATCHES_PER_CALL: Final = 256
# A sibling no checkpoint knows is read at start-up if it changed after this long before the last
# commit (clock slack; a file the agent never saw changed after it).
RECOVER_SLACK_S: Final = 120.0
COMPRESSED: Final = (".gz", ".bz2", ".xz", ".zst")


def fingerprint(path: str, *, allow_partial: bool = False) -> str | None:
    """Hex id of a file from its first line (or first FINGERPRINT_BYTES), None if not yet known."""
    head = read_head(path)
    return None if head is None else fingerprint_bytes(head, allow_partial=allow_partial)


def fingerprint_bytes(head: bytes, *, allow_partial: bool = False) -> str | None:
    newline = head.find(b"\n", 0, FINGERPRINT_BYTES)
    if newline >= 0:
        key = head[: newline + 1]
    elif len(head) >= FINGERPRINT_BYTES:
        key = head[:FINGERPRINT_BYTES]
    elif allow_partial and head:
        key = head
    else:
        return None
    return hashlib.sha256(key).hexdigest()[:32]


def read_head(path: str) -> bytes | None:
    """The first PREFIX_BYTES of a file (None if it cannot be read)."""
    try:
        with open(path, "rb", buffering=0) as fh:
            return fh.read(PREFIX_BYTES) or b""
    except OSError:
        return None


def content_fingerprint(head: bytes) -> str:
    """`<length>:<hash>` of the first min(len(head), PREFIX_BYTES) bytes."""
    key = head[:PREFIX_BYTES]
    return f"{len(key)}:{hashlib.sha256(key).hexdigest()[:32]}"


def content_matches(head: bytes, fingerprint: str) -> bool:
    """Does a file starting with `head` start with the bytes `fingerprint` was made of?"""
    length, _, digest = fingerprint.partition(":")
    n = int(length)
    return len(head) >= n and hashlib.sha256(head[:n]).hexdigest()[:32] == digest


def recognises(source_id: str, checkpoint: Checkpoint, head: bytes) -> bool:
    """Is a file starting with `head` the source of this checkpoint, by content?"""
    if checkpoint.fingerprint:
        return content_matches(head, checkpoint.fingerprint)
    # Written by an older logpipe: the id is the hash of the first line.
    return fingerprint_bytes(head, allow_partial=True) == source_id


def open_file_budget() -> int:
    """How many log files may be open at once: a quarter of the soft limit, so sockets, parts,
    DuckDB and the rest keep room (at least 8, at most MAX_OPEN_FILES)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        soft = 1 << 16
    return max(8, min(MAX_OPEN_FILES, soft // 4))


def delivered_to_end(path: str, checkpoints: CheckpointStore) -> bool:
    """Does a checkpoint of this very file (device/inode and content) reach its end?"""
    try:
        st = os.stat(path)
    except OSError:
        return False
    head = read_head(path)
    if head is None:
        return False
    return any(
        (cp.dev, cp.ino) == (st.st_dev, st.st_ino) and recognises(sid, cp, head) and cp.offset >= st.st_size
        for sid, cp in checkpoints.items()
    )


@dataclass(slots=True)
class TrackedFile:
    """One file being read. `read_pos` may run ahead of the committed checkpoint.

    `fh` is None while the file is closed (idle, to keep open files bounded); `size` is its size
    as last seen, by fstat while open, by discovery's stat while closed.
    """

    source_id: str
    path: str
    dev: int
    ino: int
    fh: io.FileIO | None  # unbuffered: we seek and read whole chunks ourselves
    read_pos: int
    fingerprint: str
    size: int
    format_name: str = ""  # "" until decided (when first opened)
    final_line: Callable[[bytes], bool] | None = None  # None: every line may end a batch (no wrapper)
    carry: bytes = b""
    skipping: OversizedLine | None = None
    last_data: float = field(default_factory=time.monotonic)
    rotated: bool = False  # no longer at a globbed path: read to the end, then let go
    read_bytes: int = READ_BYTES
    source_index: int = 0  # which configured source found it (see Watch)
    recheck: bool = False  # closed and rotated away: open it again to see what is left
    # Its size when last seen while it certainly was this file (its content checked): `size` of
    # a closed file comes from a stat by inode, which may be another file's by now. Losses are
    # counted from this, so that a warning never claims more than was there.
    known_size: int = 0

    @property
    def carry_start(self) -> int:
        return self.read_pos - len(self.carry)

    @property
    def fingerprint_length(self) -> int:
        return int(self.fingerprint.partition(":")[0])

    def current_size(self) -> int:
        """The file's size now if open, else as last seen."""
        if self.fh is not None:
            try:
                return os.fstat(self.fh.fileno()).st_size
            except (OSError, ValueError):
                pass
        return self.size

    def read_batch(self, *, at_eof_flush: bool, size: int | None = None) -> RawBatch | None:
        """Read what is new and return the complete lines as a batch (None when nothing is).

        `size` (the fstat size, when known) keeps small reads from allocating a whole chunk.
        """
        assert self.fh is not None
        fh = self.fh
        fh.seek(self.read_pos)
        want = self.read_bytes if size is None else max(0, min(self.read_bytes, size - self.read_pos))
        chunk = (fh.read(want) or b"") if want else b""
        now_us = time.time_ns() // 1000
        if chunk:
            self.last_data = time.monotonic()
        self.read_pos += len(chunk)
        if self.skipping is not None:
            return self._skip_oversized(chunk, now_us, at_eof=at_eof_flush and not chunk)
        data = self.carry + chunk
        start = self.read_pos - len(data)
        cut = self._cut(data)
        if cut == 0:
            if len(data) > MAX_LINE_BYTES:
                self.skipping = OversizedLine(start, len(data), data[:DEAD_LETTER_HEAD_BYTES])
                self.carry = b""
                return self._skip_oversized(b"", now_us, at_eof=at_eof_flush and want == len(chunk) == 0)
            if at_eof_flush and data and not chunk:
                # End of input (until="end"): take the unterminated last line, flagged.
                self.carry = b""
                return RawBatch(
                    self.source_id,
                    self.path,
                    start,
                    self.read_pos,
                    data,
                    now_us,
                    self.format_name,
                    unterminated=True,
                    source_index=self.source_index,
                )
            self.carry = data
            return None
        self.carry = data[cut:]
        # A view, not a copy: the batch is read once (framing copies the lines it keeps).
        return RawBatch(
            self.source_id,
            self.path,
            start,
            start + cut,
            memoryview(data)[:cut],
            now_us,
            self.format_name,
            source_index=self.source_index,
        )

    def replaced(self) -> bool:
        """Was the file truncated or rewritten under us? (Shorter than read, or it no longer
        starts with the bytes of its fingerprint.)

        Checked on the open descriptor before and after each read, so bytes of a new file written
        into a truncated one are never taken for the rest of the old one.
        """
        assert self.fh is not None
        fd = self.fh.fileno()
        try:
            if os.fstat(fd).st_size < self.read_pos:
                return True
            head = os.pread(fd, self.fingerprint_length, 0)
        except OSError:
            return False
        return not content_matches(head, self.fingerprint)

    def _cut(self, data: bytes) -> int:
        """Length of the prefix of `data` that ends a line (and a wrapper group, if any)."""
        end = data.rfind(b"\n") + 1
        if self.final_line is None or end == 0:
            return end
        while end > 0:
            prev = data.rfind(b"\n", 0, end - 1) + 1
            if self.final_line(data[prev : end - 1]):
                return end
            end = prev
        # A group longer than one read: cut anyway rather than hold unbounded memory.
        return data.rfind(b"\n") + 1 if len(data) >= self.read_bytes else 0

    def _skip_oversized(self, chunk: bytes, now_us: int, *, at_eof: bool = False) -> RawBatch | None:
        """Skip an oversized line to its newline; at the end of input (`at_eof`: until="end", or a
        rotated file gone quiet) it ends there, unterminated, and is dead-lettered all the same."""
        assert self.skipping is not None
        newline = chunk.find(b"\n")
        over = self.skipping
        if newline < 0:
            self.skipping = OversizedLine(over.offset, over.length + len(chunk), over.head)
            if not at_eof:
                return None
            self.skipping = None
            done = OversizedLine(over.offset, over.length + len(chunk), over.head)
            return RawBatch(
                self.source_id,
                self.path,
                over.offset,
                self.read_pos,
                b"",
                now_us,
                self.format_name,
                oversized=(done,),
                source_index=self.source_index,
            )
        end = self.read_pos - len(chunk) + newline + 1
        self.skipping = None
        self.carry = chunk[newline + 1 :]
        done = OversizedLine(over.offset, over.length + newline, over.head)
        return RawBatch(
            self.source_id,
            self.path,
            over.offset,
            end,
            b"",
            now_us,
            self.format_name,
            oversized=(done,),
            source_index=self.source_index,
        )

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def rotated_siblings(path: str) -> list[str]:
    """Files next to `path` whose names start with its name (app.log.1, app.log-2026…), newest first."""
    folder, name = os.path.split(path)
    try:
        entries = os.listdir(folder or ".")
    except OSError:
        return []
    found = [os.path.join(folder, e) for e in entries if e.startswith(name) and e != name]
    found = [p for p in found if not p.endswith(COMPRESSED)]
    return sorted(found, key=lambda p: _mtime(p), reverse=True)


def names_with_inode(path: str, ino: int) -> list[str]:
    """Other names in `path`'s folder whose inode number is `ino` (one listing, no stat: the
    inode number comes with each entry)."""
    folder = os.path.dirname(path)
    try:
        with os.scandir(folder or ".") as entries:
            names = [e.name for e in entries if e.inode() == ino]
    except OSError:
        return []
    return [p for p in (os.path.join(folder, n) for n in sorted(names)) if p != path]


def inodes_in_folders(folders: Iterable[str]) -> dict[str, dict[int, str]]:
    """Each folder's entries by inode number: one listing per folder, no stat."""
    found: dict[str, dict[int, str]] = {}
    for folder in folders:
        try:
            with os.scandir(folder or ".") as entries:
                found[folder] = {e.inode(): e.name for e in entries}
        except OSError:
            found[folder] = {}
    return found


def open_by_identity(path: str, dev: int, ino: int) -> tuple[io.FileIO, str] | None:
    """The open file with this device/inode, and its name: at `path`, else wherever it now is in
    the same folder (renamed: app.log.1 -> app.log.2, whatever the new name). None: it is no
    longer in that folder (deleted, or moved out), or cannot be opened."""
    for candidate in chain([path], lazy(lambda p: names_with_inode(p, ino), path)):
        try:
            fh = open(candidate, "rb", buffering=0)  # noqa: SIM115 - handed to the caller
        except PermissionError:
            if candidate == path:
                return None  # there, but unreadable: no folder scan at every discovery
            continue
        except OSError:
            continue
        st = os.fstat(fh.fileno())
        if (st.st_dev, st.st_ino) == (dev, ino):
            return fh, candidate
        fh.close()
    return None


def identified_head(item: Discovered) -> bytes | None:
    """The first PREFIX_BYTES of `item`'s very file, read by device/inode: a file renamed between
    the listing and this read (logrotate shifting app.log.1 to app.log.2 meanwhile) is followed,
    and `item.path` updated, rather than the head of whatever now has its old name being taken
    for it. None if it is gone or unreadable."""
    found = open_by_identity(item.path, item.dev, item.ino)
    if found is None:
        return None
    fh, item.path = found
    with fh:
        try:
            return os.pread(fh.fileno(), PREFIX_BYTES, 0)
        except OSError:
            return None


def line_start(fd: int, pos: int) -> int:
    """The start of the line holding byte `pos` (`pos` itself when a line starts there).

    A checkpoint is always at a line's start unless it was edited (or the last line had no
    newline yet): reading from inside a line would dead-letter its tail as a malformed record.
    The archive's ledger drops the line if it is already archived.
    """
    end = pos
    while end > 0:
        chunk = os.pread(fd, min(end, 64 << 10), end - min(end, 64 << 10))
        if not chunk:
            return pos
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return end - len(chunk) + newline + 1
        end -= len(chunk)
    return 0


def lazy(listing: Callable[[str], list[str]], path: str) -> Iterator[str]:
    """`listing(path)`, called only if iterated that far (a folder listing is not free)."""
    yield from listing(path)


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


@dataclass(slots=True)
class Discovered:
    path: str
    dev: int
    ino: int
    size: int
    source_index: int = 0
    mtime: float = 0.0
    globbed: bool = True  # matched a glob (else: a sibling or checkpoint path, at start-up)


def discovered(path: str, source_index: int, *, globbed: bool = True) -> Discovered | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return Discovered(path, st.st_dev, st.st_ino, st.st_size, source_index, st.st_mtime, globbed)


@dataclass(frozen=True, slots=True)
class Watch:
    """One configured source as the file source sees it: its globs and its `--format` override.

    A file that the globs of several sources match belongs to the first of them.
    """

    patterns: tuple[str, ...]
    format_name: str | None = None


def _literal(pattern: str) -> bool:
    """A pattern without glob characters, or one that names a file as it is: `logs[1]/app.log`
    is that file when it exists (as a glob it would mean `logs1/app.log`)."""
    return not glob.has_magic(pattern) or os.path.isfile(pattern)


def source_index_of(path: str, watches: Sequence[Watch]) -> int | None:
    """The first source whose globs match `path` (for a file found by name, not by globbing)."""
    for index, watch in enumerate(watches):
        if any(fnmatch.fnmatchcase(path, p) or p == path for p in watch.patterns):
            return index
    return None


def siblings_of(paths: Iterable[str]) -> list[str]:
    """Rotated siblings of every path, each folder listed once (not once per file: 100k files)."""
    import bisect

    by_folder: dict[str, set[str]] = {}
    for path in paths:
        folder, name = os.path.split(path)
        by_folder.setdefault(folder, set()).add(name)
    found: list[str] = []
    for folder, names in by_folder.items():
        try:
            entries = sorted(os.listdir(folder or "."))
        except OSError:
            continue
        for name in names:
            at = bisect.bisect_right(entries, name)
            while at < len(entries) and entries[at].startswith(name):
                if not entries[at].endswith(COMPRESSED):
                    found.append(os.path.join(folder, entries[at]))
                at += 1
    return found


class FileWatcher:
    """Finds files for the globs, reads them (a bounded number open at once), and hands out
    batches of complete lines."""

    def __init__(
        self,
        watches: Sequence[Watch],
        checkpoints: CheckpointStore,
        *,
        until: Until,
        detect_format: FormatDetector,
        read_bytes: int = READ_BYTES,
        max_open: int | None = None,
    ) -> None:
        self.watches = list(watches)
        self.detect_format = detect_format
        self.checkpoints = checkpoints
        # "end": the input is complete (a one-off run, a spool): a file without a complete first line,
        # an unterminated last line and an unreadable file are dealt with now, not waited for.
        self.to_end = until == "end"
        self.read_bytes = read_bytes
        self.max_open = max_open if max_open is not None else open_file_budget()
        self.tracked: dict[str, TrackedFile] = {}
        self.truncations = 0
        self._recovered = False
        self._unreadable: set[str] = set()  # warned about once each
        self._open: dict[str, None] = {}  # ids of open files, least recently active first
        self._due: dict[str, None] = {}  # ids of closed files with something to read
        self._turn = 0  # where the next round of reading starts (see batches)
        self._retired: set[str] = set()  # ids of sources whose file was truncated under them
        # Unterminated last lines of files let go (gone, truncated without a copy): delivered next.
        self._orphans: list[RawBatch] = []
        # Files looked at and left alone (no first line yet, a copy): (dev, ino) -> (size, mtime).
        self._passed: dict[tuple[int, int], tuple[int, float]] = {}
        self._next_discover = 0.0
        self._by_inode: dict[tuple[int, int], TrackedFile] | None = None
        self._names: _Names | None = None

    # ----------------------------------------------------------------------------- discovery

    @property
    def patterns(self) -> list[str]:
        return [p for watch in self.watches for p in watch.patterns]

    def reconfigure(self, watches: Sequence[Watch]) -> list[int]:
        """New sources (a reloaded config); open files keep their place.

        Each file belongs to the first new source whose globs match it (its format is decided
        again). A file that no new source matches (a removed source, or a rotated file
        being finished) is read to its end and let go under its old source: that source is
        appended, without globs. Returns the old indices of the sources appended, in order.
        """
        old, self.watches = self.watches, list(watches)
        kept: dict[int, int] = {}
        for tracked in self.tracked.values():
            index = source_index_of(tracked.path, self.watches)
            if index is None:
                if tracked.source_index not in kept:
                    kept[tracked.source_index] = len(self.watches)
                    self.watches.append(Watch((), old[tracked.source_index].format_name))
                tracked.source_index = kept[tracked.source_index]
                continue
            tracked.source_index = index
            tracked.format_name = ""  # decided again when next read
        self._next_discover = 0.0
        return list(kept)

    def _glob(self) -> list[Discovered]:
        seen: dict[tuple[int, int], Discovered] = {}
        for index, watch in enumerate(self.watches):
            for pattern in watch.patterns:
                matches = [pattern] if _literal(pattern) else glob.glob(pattern, recursive=True)
                for path in sorted(matches):
                    found = discovered(path, index)
                    if found is not None:
                        seen.setdefault((found.dev, found.ino), found)
        return list(seen.values())

    def matched_anything(self) -> bool:
        """Did any pattern match a regular file (even one with nothing to read yet)?"""
        return bool(self._glob())

    def discover(self) -> bool:
        """Find new files, notice renames, note growth of closed files. Each call is a glob and a
        stat of every file, so calls closer than 1/DISCOVER_DUTY times its cost return at once
        (False: not run)."""
        if self._recovered and time.monotonic() < self._next_discover:
            return False
        started = time.monotonic()
        found = self._glob()
        if not self._recovered:
            self._recovered = True
            self._start_up(found)
        else:
            self._notice_moves(found)
            for item in found:
                if (item.dev, item.ino) not in self._inodes():
                    self._consider(item)
        self._by_inode = self._names = None
        cost = time.monotonic() - started
        self._next_discover = time.monotonic() + cost * (1 / DISCOVER_DUTY - 1)
        return True

    def _inodes(self) -> dict[tuple[int, int], TrackedFile]:
        if self._by_inode is None:
            self._by_inode = {(t.dev, t.ino): t for t in self.tracked.values()}
        return self._by_inode

    def _index(self) -> _Names:
        """Checkpoints and open sources by inode and by name, built once per discovery (and only
        when a file is new), so that matching 100k new files is not 100k scans of 100k entries."""
        if self._names is None:
            self._names = _Names.of(self.checkpoints.items(), self.tracked.values())
        return self._names

    def _notice_moves(self, found: list[Discovered]) -> None:
        """Update paths and sizes of known files; those no longer globbed were rotated away."""
        found_inodes = {(d.dev, d.ino): d for d in found}
        rotated_away: list[TrackedFile] = []
        for tracked in list(self.tracked.values()):
            item = found_inodes.get((tracked.dev, tracked.ino))
            if item is None:
                if not tracked.rotated:
                    rotated_away.append(tracked)
                continue
            if tracked.fh is None and item.path != tracked.path and not self._still_holds(tracked, item.path):
                # A closed file's inode under another name, with other content: the file was
                # deleted and its inode reused (an inode alone never identifies a file).
                self._gone(tracked, "was deleted")
                continue
            if item.path != tracked.path:
                self._renamed(tracked, item.path)
                if tracked.fh is None:
                    tracked.known_size = item.size  # (its content was just checked)
            tracked.path, tracked.rotated = item.path, False
            if tracked.fh is None:
                tracked.size = item.size
                self._mark(tracked)
        if rotated_away:
            self._rotated_away(rotated_away)

    def _rotated_away(self, files: list[TrackedFile]) -> None:
        """Files no longer at a globbed path: say where each went (its new name in its folder, each
        folder listed once however many files rotate), and hold a closed one open now, before the
        next rotation can compress and delete it."""
        new_names = inodes_in_folders({os.path.dirname(t.path) for t in files})
        for tracked in files:
            name = new_names.get(os.path.dirname(tracked.path), {}).get(tracked.ino)
            new_path = os.path.join(os.path.dirname(tracked.path), name) if name else None
            if new_path is not None and tracked.fh is None and not self._still_holds(tracked, new_path):
                new_path = None  # (closed: its inode number may have been reused)
            if new_path is not None:
                log.info(
                    "%s was renamed to %s",
                    tracked.path,
                    new_path,
                    extra={"event": "file_rotated", "path": tracked.path, "to": new_path, "offset": tracked.read_pos},
                )
                tracked.path = new_path
            else:
                log.info(
                    "%s was renamed out of its folder or deleted",
                    tracked.path,
                    extra={"event": "file_rotated", "path": tracked.path, "to": None, "offset": tracked.read_pos},
                )
            tracked.rotated = True
            tracked.recheck = tracked.fh is None
            self._mark(tracked)
            if tracked.fh is None:
                self._ensure_open(tracked)

    def _start_up(self, found: list[Discovered]) -> None:
        """Match every file that may hold a source (see the module docstring) to the checkpoints:
        first by device/inode, everywhere, then by content and name, then the rest as new."""
        globbed = {(d.dev, d.ino) for d in found}
        extra_paths = {cp.path for _, cp in self.checkpoints.items()}
        sibling_paths = siblings_of([*(d.path for d in found), *extra_paths])
        recovery: dict[tuple[int, int], Discovered] = {}
        for path in sorted({*sibling_paths, *extra_paths}):
            item = discovered(path, source_index_of(path, self.watches) or 0, globbed=False)
            if item is not None and (item.dev, item.ino) not in globbed:
                recovery.setdefault((item.dev, item.ino), item)
        candidates = [*found, *recovery.values()]
        by_inode: dict[tuple[int, int], list[tuple[str, Checkpoint]]] = {}
        for sid, cp in self.checkpoints.items():
            by_inode.setdefault((cp.dev, cp.ino), []).append((sid, cp))
        left = []
        for item in candidates:
            head = identified_head(item)
            if head is None or not self._resume_by_inode(item, head, by_inode.get((item.dev, item.ino), [])):
                left.append(item)
        store_time = self.checkpoints.mtime()
        for item in left:
            recent = store_time > 0 and item.mtime >= store_time - RECOVER_SLACK_S
            self._consider(item, new_allowed=item.globbed or recent)

    def _resume_by_inode(self, item: Discovered, head: bytes, entries: list[tuple[str, Checkpoint]]) -> bool:
        """Track `item` as the source whose checkpoint has its device/inode and content."""
        for sid, cp in sorted(entries, key=lambda e: -e[1].offset):
            if sid not in self.tracked and recognises(sid, cp, head):
                return self._track(item, sid, cp.offset, head, rotated=not item.globbed) is not None
        return False

    def _consider(self, item: Discovered, *, new_allowed: bool = True) -> None:
        """A file no source is reading: resume its source, leave a copy alone, or start a new one."""
        key = (item.dev, item.ino)
        if self._passed.get(key) == (item.size, item.mtime):
            return  # looked at already, and unchanged
        head = identified_head(item)
        if head is None:
            if not self._readable(item.path):
                return
            head = b""
        first_line = fingerprint_bytes(head, allow_partial=self.to_end)
        if first_line is None:
            self._passed[key] = (item.size, item.mtime)
            return  # no first line yet
        names = self._index()
        for sid, cp in names.checkpoints_by_inode.get(key, ()):
            if sid not in self.tracked and recognises(sid, cp, head):
                self._track(item, sid, cp.offset, head)
                return
        for other in names.prefixes(names.tracked_by_name, item.path):
            if self.tracked.get(other.source_id) is other and content_matches(head, other.fingerprint):
                self._passed[key] = (item.size, item.mtime)
                return  # a copy of a file being read (copy-truncate's copy, before the truncate)
        for sid, cp in names.prefixes(names.checkpoints_by_name, item.path):
            if sid not in self.tracked and recognises(sid, cp, head):
                # The source moved or was copied here (copy-truncate while stopped): finish it.
                self._track(item, sid, min(cp.offset, item.size), head, rotated=not item.globbed)
                return
        if not new_allowed:
            return
        self._track(item, self._new_id(first_line, item.dev, item.ino), 0, head, rotated=not item.globbed)

    def _new_id(self, first_line: str, dev: int, ino: int) -> str:
        """The first-line hash if free (as older versions named every file), else a hash of it
        with device, inode and a counter: deterministic, so a re-read after a crash matches."""
        candidate, n = first_line, 0
        while candidate in self.tracked or candidate in self._retired or self.checkpoints.get(candidate) is not None:
            n += 1
            candidate = hashlib.sha256(f"{first_line}:{dev}:{ino}:{n}".encode()).hexdigest()[:32]
        return candidate

    def _track(
        self, item: Discovered, source_id: str, start: int, head: bytes, *, rotated: bool = False
    ) -> TrackedFile | None:
        """Start reading `item` as `source_id` from `start` (opened lazily, when there is room)."""
        checkpoint = self.checkpoints.get(source_id)
        if start > item.size:
            log.warning(
                "checkpoint of %s is past its end (%d > %d); reading from the start",
                item.path,
                start,
                item.size,
                extra={"event": "checkpoint_past_end", "path": item.path, "offset": start, "size": item.size},
            )
            start = 0
        if start:
            try:
                with open(item.path, "rb", buffering=0) as fh:
                    start = line_start(fh.fileno(), start)  # a checkpoint inside a line: read that line whole
            except OSError:
                return None
        if checkpoint is not None and start < checkpoint.offset:
            self.checkpoints.rewind(source_id, start)  # or it would stay ahead of what is read
        fp = content_fingerprint(head)
        tracked = TrackedFile(
            source_id,
            item.path,
            item.dev,
            item.ino,
            None,
            start,
            fp,
            item.size,
            read_bytes=self.read_bytes,
            source_index=item.source_index,
            rotated=rotated,
            known_size=item.size,
        )
        self.tracked[source_id] = tracked
        self._by_inode = None
        if self._names is not None:
            self._names.add_tracked(tracked)
        self._passed.pop((item.dev, item.ino), None)
        self._mark(tracked)
        self.checkpoints.identify(source_id, fp, item.path, item.dev, item.ino)
        if rotated and start < item.size:
            # A rotated file may be renamed again, compressed and deleted at logrotate's next run,
            # before its turn to be read comes: held open from now, its unread lines cannot go.
            # (One read to its end is not: a restart finds many such, and they hold nothing.)
            self._ensure_open(tracked)
        log.info(
            "file found",
            extra={"event": "file_opened", "path": tracked.path, "offset": start, "source_id": source_id[:16]},
        )
        return tracked

    def _readable(self, path: str) -> bool:
        """Can `path` be opened? A run to the end (`--once`) fails on a file it cannot read (a silent `0 files`
        would look shipped); an agent warns once and tries again at each discovery."""
        try:
            with open(path, "rb"):
                pass
        except FileNotFoundError:
            return False  # gone since the glob: nothing to read
        except OSError as exc:
            if self.to_end:
                raise
            if path not in self._unreadable:
                self._unreadable.add(path)
                log.warning("cannot read %s: %s", path, exc.strerror, extra={"event": "file_unreadable", "path": path})
            return False
        self._unreadable.discard(path)
        return True

    def _truncated(self, tracked: TrackedFile) -> None:
        """Copy-truncate: finish the old source from its copy, restart this inode as new. With no
        copy, what it was last seen to hold beyond the read position is certainly lost."""
        self.truncations += 1
        old_id, old_path, pos = tracked.source_id, tracked.path, tracked.carry_start
        self._forget(tracked)
        self._retired.add(old_id)  # never the id of the new content, even without a checkpoint yet
        copy = self._copy_of(tracked)
        if copy is not None:
            self.tracked[old_id] = copy
            self._by_inode = None
            self._mark(copy)
            self.checkpoints.identify(old_id, tracked.fingerprint, copy.path, copy.dev, copy.ino)
            log.info(
                "file truncated; finishing it from its copy",
                extra={"event": "file_truncated", "path": old_path, "offset": pos, "copy": copy.path},
            )
            if copy.read_pos < copy.size:
                self._ensure_open(copy)  # held before the next rotation can compress and delete it
        else:
            self._orphan_carry(tracked)
            lost = max(0, tracked.known_size - tracked.read_pos)
            if lost:
                log.warning(
                    "%s was truncated and no copy of it was found: %d bytes after offset %d are lost",
                    old_path,
                    lost,
                    tracked.read_pos,
                    extra={"event": "file_lost", "path": old_path, "offset": tracked.read_pos, "bytes": lost},
                )
            else:
                log.info(
                    "file truncated after it was read to its end",
                    extra={"event": "file_truncated", "path": old_path, "offset": pos, "copy": None},
                )
        item = discovered(old_path, tracked.source_index)
        if item is None or (item.dev, item.ino) != (tracked.dev, tracked.ino):
            return  # found again by the next discovery, whatever it is now
        # What the inode holds now is identified like any file found: usually a new source, but a
        # globbed `app.log.1` overwritten by the next copy is a copy of the file being read.
        self._names = None  # (built now, not at a discovery: not kept)
        self._consider(item)
        self._names = None

    def _copy_of(self, tracked: TrackedFile) -> TrackedFile | None:
        """The copy of a truncated file among its rotated siblings (same fingerprint), to be
        finished from where the truncated file was read to.

        A sibling with the inode of a tracked file is that file only if it still starts as that
        file did: an inode alone never identifies a file. Else that file is gone and the copy
        has its inode (logrotate compressed and deleted `app.log.2`, then copied `app.log` to
        `app.log.1`, which got the freed inode; or `cp` wrote the copy over the old one)."""
        for candidate in rotated_siblings(tracked.path):
            head = read_head(candidate)
            item = discovered(candidate, tracked.source_index, globbed=False)
            if head is None or item is None:
                continue
            holder = self._inodes().get((item.dev, item.ino))
            if holder is not None:
                if content_matches(head, holder.fingerprint):
                    continue  # that file itself, not a copy
                self._gone(holder, "was deleted or overwritten (its inode now holds another file)")
            if content_matches(head, tracked.fingerprint):
                return TrackedFile(
                    tracked.source_id,
                    candidate,
                    item.dev,
                    item.ino,
                    None,
                    tracked.carry_start,
                    tracked.fingerprint,
                    item.size,
                    tracked.format_name,
                    tracked.final_line,
                    rotated=True,
                    read_bytes=self.read_bytes,
                    source_index=tracked.source_index,
                    known_size=item.size,
                )
        return None

    def _still_holds(self, tracked: TrackedFile, path: str) -> bool:
        """Does the file at `path` still start as `tracked`'s file did?"""
        head = read_head(path)
        return head is not None and content_matches(head, tracked.fingerprint)

    def _renamed(self, tracked: TrackedFile, path: str) -> None:
        log.info(
            "%s was renamed to %s",
            tracked.path,
            path,
            extra={"event": "file_rotated", "path": tracked.path, "to": path, "offset": tracked.read_pos},
        )

    def _gone(self, tracked: TrackedFile, how: str) -> None:
        """Let go of a source whose file is no longer there to read. A warning says what was lost,
        in bytes, only when something certainly was: bytes it held (as last seen) beyond the read
        position. Its unterminated last line, already read, is dead-lettered (not lost)."""
        self._forget(tracked)
        self._orphan_carry(tracked)
        lost = max(0, tracked.known_size - tracked.read_pos)
        if lost:
            log.warning(
                "%s %s before it was read to its end: %d bytes after offset %d are lost",
                tracked.path,
                how,
                lost,
                tracked.read_pos,
                extra={"event": "file_lost", "path": tracked.path, "offset": tracked.read_pos, "bytes": lost},
            )
        else:
            log.info(
                "%s %s after it was read to its end",
                tracked.path,
                how,
                extra={"event": "file_gone", "path": tracked.path, "offset": tracked.read_pos},
            )

    def _orphan_carry(self, tracked: TrackedFile) -> None:
        """The unterminated last line of a file that is let go: no newline can come any more, so it
        is delivered as it is (a record if it parses, else a dead letter `unterminated`)."""
        if not tracked.carry:
            return
        carry = tracked.carry
        fmt = (
            tracked.format_name
            or self.detect_format(self.watches[tracked.source_index].format_name, lambda n: carry[:n]).name
        )  # (undecided again after a config reload)
        self._orphans.append(
            RawBatch(
                tracked.source_id,
                tracked.path,
                tracked.carry_start,
                tracked.read_pos,
                carry,
                time.time_ns() // 1000,
                fmt,
                unterminated=True,
                source_index=tracked.source_index,
            )
        )
        tracked.carry = b""

    def _forget(self, tracked: TrackedFile) -> None:
        tracked.close()
        self._open.pop(tracked.source_id, None)
        self._due.pop(tracked.source_id, None)
        if self.tracked.get(tracked.source_id) is tracked:
            del self.tracked[tracked.source_id]
        self._by_inode = None

    # --------------------------------------------------------------------------------- opening

    def _ensure_open(self, tracked: TrackedFile) -> bool:
        """Open a closed file (making room first), by its device/inode: at its path, else wherever
        it went in its folder (renamed while closed). False: no room now, or gone."""
        if tracked.fh is not None:
            return True
        if len(self._open) >= self.max_open and not self._close_an_idle_file():
            return False
        found = open_by_identity(tracked.path, tracked.dev, tracked.ino)
        if found is None:
            self._gone(tracked, "was deleted or moved out of its folder")
            return False
        fh, path = found
        if path != tracked.path:
            self._renamed(tracked, path)
            tracked.path, tracked.rotated = path, True
        tracked.fh, tracked.size, tracked.recheck = fh, os.fstat(fh.fileno()).st_size, False
        self._open[tracked.source_id] = None
        self._due.pop(tracked.source_id, None)
        return True

    def full(self) -> bool:
        """Every open-file slot in use while closed files wait to be read."""
        return len(self._open) >= self.max_open and bool(self._due)

    def _close_an_idle_file(self) -> bool:
        """Close the least recently active open file that is read to its end (not one being
        finished after a rotation: those are let go soon)."""
        for source_id in self._open:
            tracked = self.tracked.get(source_id)
            if tracked is None or tracked.rotated or tracked.skipping is not None:
                continue
            size = tracked.current_size()
            if size == tracked.read_pos:
                tracked.size = size
                tracked.close()
                del self._open[source_id]
                self._mark(tracked)  # (only if its unterminated last line is still to be taken)
                return True
        return False

    def _touch(self, tracked: TrackedFile) -> None:
        self._open.pop(tracked.source_id, None)
        self._open[tracked.source_id] = None

    # --------------------------------------------------------------------------------- reading

    def _wants_reading(self, tracked: TrackedFile) -> bool:
        if tracked.fh is not None or tracked.recheck:
            return True
        if tracked.size != tracked.read_pos:
            return True
        return bool(tracked.carry or tracked.skipping) and (self.to_end or tracked.rotated)

    def _mark(self, tracked: TrackedFile) -> None:
        """Note a closed file that has something to read (so an idle poll need not look at all)."""
        if tracked.fh is None and self._wants_reading(tracked):
            self._due[tracked.source_id] = None

    def batches(self, budget: int) -> Iterator[RawBatch]:
        """Up to about `budget` bytes (and MAX_BATCHES_PER_CALL batches) of new complete lines,
        one batch per file in turn, so a busy file cannot starve a quiet one.

        Only open files and closed ones known to have grown are looked at. Each call starts
        where the last one stopped. The batch cap lets the pipeline flush between calls: a
        batch of a few lines costs tens of KiB once normalised, so 10k tiny files read in one
        go would hold hundreds of MB.
        """
        spent = produced = 0
        for orphan in self._take_orphans():
            spent += orphan.size
            produced += 1
            yield orphan
        ids = [*self._open, *(i for i in self._due if i not in self._open)]
        if not ids:
            return
        start = self._turn % len(ids)
        active = [t for i in (ids[start:] + ids[:start]) if (t := self.tracked.get(i)) is not None]
        first_round = True
        while active and spent < budget and produced < MAX_BATCHES_PER_CALL:
            still_active = []
            for visited, tracked in enumerate(active, 1):
                if spent >= budget or produced >= MAX_BATCHES_PER_CALL:
                    break
                batch = self._next_batch(tracked)
                for orphan in self._take_orphans():  # the carry of a file let go just now
                    spent += orphan.size
                    produced += 1
                    yield orphan
                if first_round:
                    self._turn = start + visited
                if batch is not None:
                    spent += batch.size
                    produced += 1
                    still_active.append(tracked)
                    yield batch
            active, first_round = still_active, False

    def _take_orphans(self) -> list[RawBatch]:
        taken, self._orphans = self._orphans, []
        return taken

    def _next_batch(self, tracked: TrackedFile) -> RawBatch | None:
        if self.tracked.get(tracked.source_id) is not tracked:
            return None  # let go, or replaced by its copy, during this round
        if not self._ensure_open(tracked):
            return None
        assert tracked.fh is not None
        if not tracked.format_name:  # new, or the config was reloaded
            fmt = self.detect_format(self.watches[tracked.source_index].format_name, _head_of(tracked.fh))
            tracked.format_name, tracked.final_line = fmt.name, fmt.final_line
        try:
            size = os.fstat(tracked.fh.fileno()).st_size
        except OSError:
            return None
        tracked.size = size
        # A rotated file may still get the rest of a line from a writer that has not reopened
        # yet, so its unterminated tail is taken only once it has gone quiet.
        quiet = tracked.rotated and time.monotonic() - tracked.last_data >= ROTATED_IDLE_S
        flush = self.to_end or quiet
        if size == tracked.read_pos and not ((tracked.carry or tracked.skipping) and flush):
            return None  # nothing new: one fstat, no read
        if tracked.replaced():
            self._replaced(tracked)
            return None
        tracked.known_size = size  # (fstat before the content check: `size` bytes were its own)
        if size > tracked.read_pos:
            pause("read-chunk")
        state = (tracked.read_pos, tracked.carry, tracked.skipping)
        batch = tracked.read_batch(at_eof_flush=flush, size=size)
        if batch is not None and tracked.replaced():
            # Truncated while we read: what we read may belong to the new file. Undo.
            tracked.read_pos, tracked.carry, tracked.skipping = state
            self._replaced(tracked)
            return None
        if batch is not None:
            self._touch(tracked)
            if tracked.fingerprint_length < PREFIX_BYTES and size > tracked.fingerprint_length:
                self._extend_fingerprint(tracked)
        return batch

    def _replaced(self, tracked: TrackedFile) -> None:
        """The file no longer holds what was read from it. A live file was truncated (copy-truncate);
        a rotated one was deleted and its inode reused (nobody truncates app.log.1), so whatever
        the inode now holds is found, if globbed, by the next discovery as what it is."""
        if tracked.rotated:
            self._gone(tracked, "was deleted (its inode now holds another file)")
        else:
            self._truncated(tracked)

    def _extend_fingerprint(self, tracked: TrackedFile) -> None:
        """Fingerprint more of a file that was short when found (up to PREFIX_BYTES), so that a
        copy or a rewrite of it is told apart by more than its first line."""
        assert tracked.fh is not None
        try:
            head = os.pread(tracked.fh.fileno(), PREFIX_BYTES, 0)
        except OSError:
            return
        if content_matches(head, tracked.fingerprint):
            tracked.fingerprint = content_fingerprint(head)
            self.checkpoints.identify(tracked.source_id, tracked.fingerprint, tracked.path, tracked.dev, tracked.ino)

    def release_finished(self, committed: dict[str, int]) -> None:
        """Let go of rotated-away files that are read to the end and delivered."""
        now = time.monotonic()
        for source_id, tracked in list(self.tracked.items()):
            if not tracked.rotated or tracked.recheck or tracked.carry or tracked.skipping is not None:
                continue
            done = committed.get(source_id, -1) >= tracked.read_pos
            idle = self.to_end or now - tracked.last_data >= ROTATED_IDLE_S
            at_end = tracked.current_size() <= tracked.read_pos
            if done and idle and at_end:
                self._forget(tracked)
                log.info(
                    "rotated file finished",
                    extra={"event": "file_closed", "path": tracked.path, "offset": tracked.read_pos},
                )

    def all_read(self) -> bool:
        """Every tracked file read to its end (for until="end")."""
        if self._orphans:
            return False
        for tracked in self.tracked.values():
            if tracked.recheck or tracked.read_pos < tracked.current_size() or tracked.carry:
                return False
            if tracked.skipping is not None:
                return False
        return True

    def close(self) -> None:
        for tracked in self.tracked.values():
            tracked.close()
        self._open.clear()
        self.tracked.clear()


def _head_of(fh: io.FileIO) -> Callable[[int], bytes]:
    """Reads up to n bytes of the file's start (for format detection), wherever it is positioned."""
    return lambda n: os.pread(fh.fileno(), n, 0)


@dataclass(slots=True)
class _Names:
    """Checkpoints by inode and by (folder, name), open sources by (folder, name)."""

    checkpoints_by_inode: dict[tuple[int, int], list[tuple[str, Checkpoint]]]
    checkpoints_by_name: dict[tuple[str, str], list[tuple[str, Checkpoint]]]
    tracked_by_name: dict[tuple[str, str], list[TrackedFile]]

    @classmethod
    def of(cls, checkpoints: Iterable[tuple[str, Checkpoint]], tracked: Iterable[TrackedFile]) -> _Names:
        names = cls({}, {}, {})
        for sid, cp in checkpoints:
            names.checkpoints_by_inode.setdefault((cp.dev, cp.ino), []).append((sid, cp))
            names.checkpoints_by_name.setdefault(os.path.split(cp.path), []).append((sid, cp))
        for t in tracked:
            names.add_tracked(t)
        return names

    def add_tracked(self, tracked: TrackedFile) -> None:
        self.tracked_by_name.setdefault(os.path.split(tracked.path), []).append(tracked)

    @staticmethod
    def prefixes(table: dict[tuple[str, str], list[_T]], path: str) -> Iterator[_T]:
        """Entries whose path `path` is a rotated sibling of (a shorter name it starts with)."""
        folder, name = os.path.split(path)
        for end in range(1, len(name)):
            yield from table.get((folder, name[:end]), ())


# A source untouched this long (and not open) is forgotten: its file is long rotated away.
CHECKPOINT_RETENTION_S: Final = 14 * 24 * 3600


@dataclass(frozen=True)
class SourceSpec:
    """One configured source: globs, format override, labels (the global ones merged under its
    own) and field names."""

    patterns: tuple[str, ...]
    format_name: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    # Field name -> JSON paths put first for it (`--field level=severity`), for parse's FieldOverrides.
    fields: Mapping[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)

    @property
    def watch(self) -> Watch:
        return Watch(self.patterns, self.format_name)


class FileSource:
    """Files found by globs (FileWatcher), resumed from their checkpoints, acknowledged into them.

    `until="end"` reads every file to its end (its unterminated last line included) and ends;
    `until="follow"` tails: finds new files, survives rotation. Acknowledging advances each
    file's checkpoint and commits the checkpoint file (temp, fsync, rename).
    """

    def __init__(
        self,
        specs: Sequence[SourceSpec],
        checkpoints: CheckpointStore,
        *,
        until: Until,
        detect_format: FormatDetector,
        read_bytes: int = READ_BYTES,
        discover_interval_s: float = 1.0,
        poll_interval_s: float = 0.2,
    ) -> None:
        self.specs = list(specs)
        self.checkpoints = checkpoints
        self.until: Until = until
        self.idle_wait_s = poll_interval_s
        self.discover_interval_s = discover_interval_s
        self.watcher = FileWatcher(
            [s.watch for s in self.specs], checkpoints, until=until, detect_format=detect_format, read_bytes=read_bytes
        )
        self._last_discover = 0.0
        # The sources open at the last read, which keep their checkpoints however old: read by
        # the writer thread while acknowledging (the watcher itself is not thread-safe).
        self._open_ids: frozenset[str] = frozenset()

    async def open(self, delivery: Delivery) -> None:
        await asyncio.to_thread(self.watcher.discover)
        self._last_discover = time.monotonic()
        self._open_ids = frozenset(self.watcher.tracked)
        if self.until == "end" and not self.watcher.tracked and not self.watcher.matched_anything():
            # An agent waits for files to appear; a one-off run over nothing is a typo.
            raise UsageError(f"no file matches {', '.join(self.watcher.patterns)}")

    async def poll(self) -> None:
        return None  # reading a file never waits

    def batches(self, budget: int) -> Iterator[Read]:
        watcher = self.watcher
        if self.until == "follow" and time.monotonic() - self._last_discover >= self.discover_interval_s:
            if watcher.discover() or watcher.full():
                # Finished rotated files are let go after each flush, and also here (paced like
                # discovery, which costs more): an idle agent holds no finished file open, and
                # with every open-file slot held by finished rotated files nothing more would be
                # read, so no flush would come to free one.
                self.settled()
            self._last_discover = time.monotonic()
        try:
            for raw in watcher.batches(budget):
                tracked = watcher.tracked.get(raw.source_id)
                dev, ino = (tracked.dev, tracked.ino) if tracked else (0, 0)
                yield raw, Position(raw.source_id, raw.end, raw.path, dev, ino)
        finally:
            self._open_ids = frozenset(watcher.tracked)

    def ack(self, positions: Sequence[Position]) -> bool:
        for p in positions:
            self.checkpoints.advance(p.source_id, p.offset, p.path, p.dev, p.ino)
        self.checkpoints.forget_older_than(CHECKPOINT_RETENTION_S, keep=set(self._open_ids))
        self.checkpoints.commit()
        return True

    def settled(self) -> None:
        """Let go of rotated files that are read to their end and now committed."""
        committed = {sid: cp.offset for sid, cp in self.checkpoints.items()}
        self.watcher.release_finished(committed)

    def ended(self) -> bool:
        return self.watcher.all_read()

    def publish(self, stats: SourceGauges) -> None:
        tracked = list(self.watcher.tracked.values())
        lag: dict[str, int] = {}
        for file in tracked:
            size = file.current_size()  # as last seen if closed (idle)
            checkpoint = self.checkpoints.get(file.source_id)
            committed = checkpoint.offset if checkpoint is not None else 0
            lag[file.path] = max(lag.get(file.path, 0), size - committed)
        stats.files_tracked, stats.lag_bytes = len(tracked), lag

    def reconfigure(self, specs: Sequence[SourceSpec]) -> list[SourceSpec]:
        """New sources (a reloaded config), every open file keeping its place; returns every
        spec now in use: the new ones, then those kept for files no new glob matches."""
        kept = self.watcher.reconfigure([s.watch for s in specs])
        self.specs = [*specs, *(self.specs[i] for i in kept)]
        self.watcher.discover()
        self._last_discover = time.monotonic()
        return list(self.specs)

    async def close(self) -> None:
        self.watcher.close()
