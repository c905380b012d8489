"""Settings of the archive sink: the folder, and how its writer shares and compacts it.

The archive is named by a path (`--archive`, or `archive.path` in a config file), not by a
`--to` URL, so it has no entry in the registry of URL schemes. It holds no secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from logpipe.archive import compact as compaction
from logpipe.secrets import SinkSettings


@dataclass(frozen=True, slots=True, repr=False)
class ArchiveConfig(SinkSettings):
    """Where the archive is; `shared` for the consumers of one `logpipe ingest` group."""

    KIND: ClassVar[str] = "archive"

    path: Path
    shared: bool = False
    compact_min_files: int = compaction.MIN_FILES
    # A run that ends soon (`ship --once`) compacts once at its end instead.
    compact_while_writing: bool = True

    @property
    def display_url(self) -> str:
        return str(self.path)
