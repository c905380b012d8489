"""Tail files: discovery by glob, identity by fingerprint, rotation without loss or duplicates.

Identity. A file is identified by a fingerprint of its first line (at most FINGERPRINT_BYTES):
once a log file has a complete first line, that line never changes, so the fingerprint is stable
for the life of the file and survives renames and copies. Device/inode tell apart files that
share a fingerprint: a tracked inode keeps its identity while it still starts with that line, and
another file with the same first line (a copy) is ignored until the tracked one stops being it.
A file without a complete first line is not read yet (in `--once` mode it is, at end of input).

Rotation.
- rename (app.log -> app.log.1, new app.log): the open descriptor is read to its end before it is
  let go; the new file is a new identity, read from its start.
- rename while the agent is stopped: at start-up every unfinished checkpoint whose file is not in
  the globs is looked for among its rotated siblings (same folder, name starting with the old
  name: app.log.1, app.log-20261127) and finished there.
- copy-truncate: a tracked file that shrinks was truncated; what was not yet read is read from
  the copy among its siblings (same fingerprint), and the truncated file is a new identity.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import io
import logging
import os
import stat
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from logpipe.checkpoints import CheckpointStore
from logpipe.failpoints import pause
from logpipe.parse.limits import DEAD_LETTER_HEAD_BYTES, MAX_LINE_BYTES
from logpipe.parse.wrappers import is_final_line
from logpipe.sources.batch import OversizedLine, RawBatch

log = logging.getLogger("logpipe.sources.files")

FINGERPRINT_BYTES: Final = 1024
READ_BYTES: Final = 8 << 20
ROTATED_IDLE_S: Final = 5.0


def fingerprint(path: str, *, allow_partial: bool = False) -> str | None:
    """Hex id of a file from its first line (or first FINGERPRINT_BYTES), None if not yet known."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(FINGERPRINT_BYTES)
    except OSError:
        return None
    return fingerprint_bytes(head, allow_partial=allow_partial)


def fingerprint_bytes(head: bytes, *, allow_partial: bool = False) -> str | None:
    newline = head.find(b"\n")
    if newline >= 0:
        key = head[: newline + 1]
    elif len(head) >= FINGERPRINT_BYTES or (allow_partial and head):
        key = head
    else:
        return None
    return hashlib.sha256(key).hexdigest()[:32]


@dataclass(slots=True)
class TrackedFile:
    """One open file being read. `read_pos` may run ahead of the committed checkpoint."""

    source_id: str
    path: str
    dev: int
    ino: int
    fh: io.FileIO  # the open file, unbuffered: we seek and read whole chunks ourselves
    read_pos: int
    format_name: str
    wrapper: str | None = None
    carry: bytes = b""
    skipping: OversizedLine | None = None
    last_data: float = field(default_factory=time.monotonic)
    rotated: bool = False  # no longer at a globbed path: read to the end, then let go
    read_bytes: int = READ_BYTES
    spec: int = 0  # which configured source found it (see Watch)

    @property
    def carry_start(self) -> int:
        return self.read_pos - len(self.carry)

    def read_batch(self, *, at_eof_flush: bool) -> RawBatch | None:
        """Read what is new and return the complete lines as a batch (None when nothing is)."""
        fh = self.fh
        fh.seek(self.read_pos)
        chunk = fh.read(self.read_bytes) or b""
        now_us = time.time_ns() // 1000
        if chunk:
            self.last_data = time.monotonic()
        self.read_pos += len(chunk)
        if self.skipping is not None:
            return self._skip_oversized(chunk, now_us)
        data = self.carry + chunk
        start = self.read_pos - len(data)
        cut = self._cut(data)
        if cut == 0:
            if len(data) > MAX_LINE_BYTES:
                self.skipping = OversizedLine(start, len(data), data[:DEAD_LETTER_HEAD_BYTES])
                self.carry = b""
                return self._skip_oversized(b"", now_us)
            if at_eof_flush and data and not chunk:
                # End of input in --once mode: take the unterminated last line, flagged.
                self.carry = b""
                return RawBatch(self.source_id, self.path, start, self.read_pos, data, now_us,
                                self.format_name, unterminated=True, spec=self.spec)  # fmt: skip
            self.carry = data
            return None
        self.carry = data[cut:]
        # A view, not a copy: the batch is read once (framing copies the lines it keeps).
        return RawBatch(self.source_id, self.path, start, start + cut, memoryview(data)[:cut], now_us,
                        self.format_name, spec=self.spec)  # fmt: skip

    def replaced(self) -> bool:
        """Was the file truncated or rewritten under us? (It no longer starts with our first line.)

        Checked on the open descriptor before and after each read, so bytes of a new file written
        into a truncated one are never taken for the rest of the old one.
        """
        fd = self.fh.fileno()
        try:
            if os.fstat(fd).st_size < self.read_pos:
                return True
            head = os.pread(fd, FINGERPRINT_BYTES, 0)
        except OSError:
            return False
        now = fingerprint_bytes(head)
        return now is not None and now != self.source_id

    def _cut(self, data: bytes) -> int:
        """Length of the prefix of `data` that ends a line (and a wrapper group, if any)."""
        end = data.rfind(b"\n") + 1
        if self.wrapper is None or end == 0:
            return end
        while end > 0:
            prev = data.rfind(b"\n", 0, end - 1) + 1
            if is_final_line(self.wrapper, data[prev : end - 1]):
                return end
            end = prev
        # A group longer than one read: cut anyway rather than hold unbounded memory.
        return data.rfind(b"\n") + 1 if len(data) >= self.read_bytes else 0

    def _skip_oversized(self, chunk: bytes, now_us: int) -> RawBatch | None:
        assert self.skipping is not None
        newline = chunk.find(b"\n")
        over = self.skipping
        if newline < 0:
            self.skipping = OversizedLine(over.offset, over.length + len(chunk), over.head)
            return None
        end = self.read_pos - len(chunk) + newline + 1
        self.skipping = None
        self.carry = chunk[newline + 1 :]
        done = OversizedLine(over.offset, over.length + newline, over.head)
        return RawBatch(self.source_id, self.path, over.offset, end, b"", now_us, self.format_name,
                        oversized=(done,), spec=self.spec)  # fmt: skip

    def close(self) -> None:
        self.fh.close()


def rotated_siblings(path: str) -> list[str]:
    """Files next to `path` whose names start with its name (app.log.1, app.log-2026…), newest first."""
    folder, name = os.path.split(path)
    try:
        entries = os.listdir(folder or ".")
    except OSError:
        return []
    found = [os.path.join(folder, e) for e in entries if e.startswith(name) and e != name]
    found = [p for p in found if not p.endswith((".gz", ".bz2", ".xz", ".zst"))]
    return sorted(found, key=lambda p: _mtime(p), reverse=True)


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
    spec: int = 0


@dataclass(frozen=True, slots=True)
class Watch:
    """One configured source as the file source sees it: its globs and its `--format` override.

    A file that the globs of several sources match belongs to the first of them.
    """

    patterns: tuple[str, ...]
    format_name: str | None = None


def spec_of(path: str, watches: Sequence[Watch]) -> int | None:
    """The first source whose globs match `path` (for a file found by name, not by globbing)."""
    for index, watch in enumerate(watches):
        if any(fnmatch.fnmatchcase(path, p) or p == path for p in watch.patterns):
            return index
    return None


class FileWatcher:
    """Finds files for the globs, keeps them open, and hands out batches of complete lines."""

    def __init__(
        self,
        watches: Sequence[Watch],
        checkpoints: CheckpointStore,
        *,
        once: bool,
        read_bytes: int = READ_BYTES,
    ) -> None:
        self.watches = list(watches)
        self._formats = [FormatResolver(w.format_name) for w in self.watches]
        self.checkpoints = checkpoints
        self.once = once
        self.read_bytes = read_bytes
        self.tracked: dict[str, TrackedFile] = {}
        self.truncations = 0
        self._recovered = False
        self._unreadable: set[str] = set()  # warned about once each

    # ----------------------------------------------------------------------------- discovery

    @property
    def patterns(self) -> list[str]:
        return [p for watch in self.watches for p in watch.patterns]

    def reconfigure(self, watches: Sequence[Watch]) -> list[int]:
        """New sources (a reloaded config); open files keep their place.

        Each open file belongs to the first new source whose globs match it (its format is
        decided again). A file that no new source matches (a removed source, or a rotated file
        being finished) is read to its end and let go under its old source: that source is
        appended, without globs. Returns the old indices of the sources appended, in order.
        """
        old, self.watches = self.watches, list(watches)
        kept: dict[int, int] = {}
        for tracked in self.tracked.values():
            spec = spec_of(tracked.path, self.watches)
            if spec is None:
                if tracked.spec not in kept:
                    kept[tracked.spec] = len(self.watches)
                    self.watches.append(Watch((), old[tracked.spec].format_name))
                tracked.spec = kept[tracked.spec]
                continue
            tracked.spec = spec
            fmt = FormatResolver(self.watches[spec].format_name)(tracked.path, tracked.fh)
            tracked.format_name, tracked.wrapper = fmt.name, fmt.wrapper
        self._formats = [FormatResolver(w.format_name) for w in self.watches]
        return list(kept)

    def _glob(self) -> list[Discovered]:
        seen: dict[tuple[int, int], Discovered] = {}
        for spec, watch in enumerate(self.watches):
            for pattern in watch.patterns:
                matches = glob.glob(pattern, recursive=True) if glob.has_magic(pattern) else [pattern]
                for path in sorted(matches):
                    try:
                        st = os.stat(path)
                    except OSError:
                        continue
                    if stat.S_ISREG(st.st_mode):
                        found = Discovered(path, st.st_dev, st.st_ino, st.st_size, spec)
                        seen.setdefault((st.st_dev, st.st_ino), found)
        return list(seen.values())

    def matched_anything(self) -> bool:
        """Did any pattern match a regular file (even one with nothing to read yet)?"""
        return bool(self._glob())

    def discover(self) -> None:
        """Open new files, notice renames and truncations. Cheap enough to call every second."""
        found = self._glob()
        by_inode = {(t.dev, t.ino): t for t in self.tracked.values()}
        found_inodes = {(d.dev, d.ino) for d in found}
        for open_file in self.tracked.values():
            if (open_file.dev, open_file.ino) not in found_inodes:
                if not open_file.rotated:
                    log.info("file rotated away", extra={"event": "file_rotated", "path": open_file.path,
                                                         "offset": open_file.read_pos})  # fmt: skip
                open_file.rotated = True
        for item in found:
            known = by_inode.get((item.dev, item.ino))
            if known is not None:
                known.path, known.rotated = item.path, False
                # Truncated, or truncated and already written past our position again: either
                # way the file no longer starts with the line it had.
                if known.replaced():
                    self._truncated(known)
                continue
            self._open_new(item.path, item.dev, item.ino, item.size, item.spec)
        if not self._recovered:
            self._recovered = True
            self._resume_rotated_while_stopped()

    def _open_new(self, path: str, dev: int, ino: int, size: int, spec: int) -> TrackedFile | None:
        source_id = fingerprint(path, allow_partial=self.once)
        if source_id is None and not self._readable(path):
            return None
        if source_id is None or source_id in self.tracked:
            return None  # no first line yet, or a copy of a file we already read
        checkpoint = self.checkpoints.get(source_id)
        start = checkpoint.offset if checkpoint is not None else 0
        if start > size:
            log.warning("checkpoint of %s is past its end (%d > %d); reading from the start", path, start, size,
                        extra={"event": "checkpoint_past_end", "path": path, "offset": start, "size": size})  # fmt: skip
            start = 0
        try:
            fh = open(path, "rb", buffering=0)  # noqa: SIM115 - kept open while tailing
        except OSError:
            return None
        start = line_start(fh.fileno(), start)  # a checkpoint inside a line: read that line whole
        if checkpoint is not None and start < checkpoint.offset:
            self.checkpoints.rewind(source_id, start)  # or it would stay ahead of what is read
        fmt = self._formats[spec](path, fh)
        tracked = TrackedFile(source_id, path, dev, ino, fh, start, fmt.name, fmt.wrapper, read_bytes=self.read_bytes,
                              spec=spec)  # fmt: skip
        self.tracked[source_id] = tracked
        log.info("file opened", extra={"event": "file_opened", "path": path, "offset": start, "format": fmt.name,
                                       "source_id": source_id[:16]})  # fmt: skip
        return tracked

    def _readable(self, path: str) -> bool:
        """Can `path` be opened? A `--once` run fails on a file it cannot read (a silent `0 files`
        would look shipped); an agent warns once and tries again at each discovery."""
        try:
            with open(path, "rb"):
                pass
        except FileNotFoundError:
            return False  # gone since the glob: nothing to read
        except OSError as exc:
            if self.once:
                raise
            if path not in self._unreadable:
                self._unreadable.add(path)
                log.warning("cannot read %s: %s", path, exc.strerror,
                            extra={"event": "file_unreadable", "path": path})  # fmt: skip
            return False
        self._unreadable.discard(path)
        return True

    def _resume_rotated_while_stopped(self) -> None:
        for source_id, checkpoint in self.checkpoints.items():
            if source_id in self.tracked:
                continue
            for candidate in rotated_siblings(checkpoint.path):
                if fingerprint(candidate) == source_id:
                    st = os.stat(candidate)
                    if st.st_size > checkpoint.offset:
                        spec = spec_of(checkpoint.path, self.watches) or 0
                        resumed = self._open_new(candidate, st.st_dev, st.st_ino, st.st_size, spec)
                        if resumed is not None:
                            resumed.rotated = True
                    break

    def _truncated(self, tracked: TrackedFile) -> None:
        """Copy-truncate: finish the old identity from its copy, restart this inode as new."""
        self.truncations += 1
        old_id, old_path, pos = tracked.source_id, tracked.path, tracked.carry_start
        tracked.close()
        del self.tracked[old_id]
        for candidate in rotated_siblings(old_path):
            if fingerprint(candidate) == old_id:
                st = os.stat(candidate)
                fh = open(candidate, "rb", buffering=0)  # noqa: SIM115
                copy = TrackedFile(old_id, candidate, st.st_dev, st.st_ino, fh, pos, tracked.format_name,
                                   tracked.wrapper, rotated=True, read_bytes=self.read_bytes,
                                   spec=tracked.spec)  # fmt: skip
                self.tracked[old_id] = copy
                log.info("file truncated; finishing it from its copy", extra={
                    "event": "file_truncated", "path": old_path, "offset": pos, "copy": candidate})  # fmt: skip
                break
        else:
            log.warning("%s was truncated and no copy was found: lines after offset %d are lost", old_path, pos,
                        extra={"event": "file_truncated", "path": old_path, "offset": pos, "copy": None})  # fmt: skip
        try:
            st = os.stat(old_path)
        except OSError:
            return
        self._open_new(old_path, st.st_dev, st.st_ino, st.st_size, tracked.spec)

    # --------------------------------------------------------------------------------- reading

    def batches(self, budget: int) -> Iterator[RawBatch]:
        """Up to about `budget` bytes of new complete lines, one batch per file in turn, so a busy
        file cannot starve a quiet one."""
        spent = 0
        active = list(self.tracked.values())
        while active and spent < budget:
            still_active = []
            for tracked in active:
                if spent >= budget:
                    break
                batch = self._next_batch(tracked)
                if batch is not None:
                    spent += batch.size
                    still_active.append(tracked)
                    yield batch
            active = still_active

    def _next_batch(self, tracked: TrackedFile) -> RawBatch | None:
        if self.tracked.get(tracked.source_id) is not tracked:
            return None  # closed, or replaced by its copy, during this round
        if tracked.replaced():
            self._truncated(tracked)
            return None
        # A rotated file may still get the rest of a line from a writer that has not reopened
        # yet, so its unterminated tail is taken only once it has gone quiet.
        quiet = tracked.rotated and time.monotonic() - tracked.last_data >= ROTATED_IDLE_S
        state = (tracked.read_pos, tracked.carry, tracked.skipping)
        if os.fstat(tracked.fh.fileno()).st_size > tracked.read_pos:
            pause("read-chunk")
        batch = tracked.read_batch(at_eof_flush=self.once or quiet)
        if batch is not None and tracked.replaced():
            # Truncated while we read: what we read may belong to the new file. Undo.
            tracked.read_pos, tracked.carry, tracked.skipping = state
            self._truncated(tracked)
            return None
        return batch

    def release_finished(self, committed: dict[str, int]) -> None:
        """Close rotated-away files that are read to the end and delivered."""
        now = time.monotonic()
        for source_id, tracked in list(self.tracked.items()):
            if not tracked.rotated or tracked.carry or tracked.skipping is not None:
                continue
            done = committed.get(source_id, -1) >= tracked.read_pos
            idle = self.once or now - tracked.last_data >= ROTATED_IDLE_S
            try:
                at_end = os.fstat(tracked.fh.fileno()).st_size <= tracked.read_pos
            except OSError:
                at_end = True
            if done and idle and at_end:
                tracked.close()
                del self.tracked[source_id]
                log.info("rotated file finished", extra={"event": "file_closed", "path": tracked.path,
                                                         "offset": tracked.read_pos})  # fmt: skip

    def all_read(self) -> bool:
        """Every tracked file read to its end (for --once)."""
        for tracked in self.tracked.values():
            try:
                size = os.fstat(tracked.fh.fileno()).st_size
            except OSError:
                continue
            if tracked.read_pos < size or tracked.carry or tracked.skipping is not None:
                return False
        return True

    def close(self) -> None:
        for tracked in self.tracked.values():
            tracked.close()
        self.tracked.clear()


class FormatResolver:
    """Decides a file's profile: the `--format` override, or detection from its first lines."""

    def __init__(self, override: str | None = None) -> None:
        self.override = override

    def __call__(self, path: str, fh: io.FileIO) -> ResolvedFormat:
        from logpipe.parse.detect import detect, sample_lines
        from logpipe.parse.profiles import PROFILES

        if self.override and self.override != "auto":
            profile = PROFILES[self.override]
        else:
            head = os.pread(fh.fileno(), 64 << 10, 0)
            profile = detect(sample_lines(head))
        return ResolvedFormat(profile.name, profile.wrapper)


@dataclass(frozen=True, slots=True)
class ResolvedFormat:
    name: str
    wrapper: str | None

