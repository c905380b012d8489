"""Standard input, spooled to a file first so it gets the guarantees of a file.

    stdin --copy--> STATE/spool/stdin-<ns>.log --FileSource(until="end")--> the pipeline

A crash loses nothing that reached the spool: the next run ships leftover spool files (the spool
glob is one of the source's patterns), and a spool file delivered to its end is removed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from logpipe.checkpoints import CheckpointStore
from logpipe.sources.files import FileSource, SourceSpec, delivered_to_end

if TYPE_CHECKING:
    from logpipe.model import FormatDetector
    from logpipe.sources.base import Delivery

STDIN: Final = "-"


class StdinSpooler:
    """Copies standard input into a spool file in a thread of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"stdin-{time.time_ns()}.log"
        self.error: OSError | None = None  # why the copy stopped before standard input ended
        self._thread = threading.Thread(target=self._copy, name="stdin-spool", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait(self, timeout_s: float | None = None) -> bool:
        """True once standard input has ended and the spool file is fsynced."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _copy(self) -> None:
        try:
            with open(self.path, "wb") as out:
                shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            # A full disk: kept for `open` to raise in the main thread (one line, exit 1), never a
            # thread's traceback and a run that ships a part of its input as if it were all.
            # What reached the spool stays there for the next run.
            self.error = exc if exc.filename else OSError(exc.errno, exc.strerror, str(self.path))

    def cleanup(self, checkpoints: CheckpointStore) -> None:
        """Remove spool files that are delivered to their end."""
        for path in self.folder.glob("*.log"):
            if path.stat().st_size == 0 or delivered_to_end(str(path), checkpoints):
                path.unlink()


def uses_stdin(specs: Sequence[SourceSpec]) -> bool:
    return any(STDIN in spec.patterns for spec in specs)


class StdinSource(FileSource):
    """The configured files with `-` replaced by the spool, read to their end once stdin has ended.

    Copying starts when the source is made; reading starts when standard input has ended (so
    the spool file is complete); closing removes the spool files that are delivered.
    """

    def __init__(
        self, specs: Sequence[SourceSpec], checkpoints: CheckpointStore, spool: Path, *, detect_format: FormatDetector
    ) -> None:
        self.spooler = StdinSpooler(spool)
        glob = str(spool / "*.log")
        spooled = [
            SourceSpec(tuple(glob if p == STDIN else p for p in s.patterns), s.format_name, s.labels, s.fields)
            for s in specs
        ]
        super().__init__(spooled, checkpoints, until="end", detect_format=detect_format)
        self.spooler.start()

    async def open(self, delivery: Delivery) -> None:
        while not await asyncio.to_thread(self.spooler.wait, 0.2):
            if delivery.stopping:
                return  # stopped before stdin ended: the spool stays for the next run
        if self.spooler.error is not None:
            raise self.spooler.error
        await super().open(delivery)

    async def close(self) -> None:
        await super().close()
        self.spooler.cleanup(self.checkpoints)
