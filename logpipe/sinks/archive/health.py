"""Whether the archive folder can be written: it exists and is writable, or the nearest folder
above it is (so it can be created). Nothing is written."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from logpipe.sinks.base import Health

if TYPE_CHECKING:
    from logpipe.sinks.archive.config import ArchiveConfig


def check(config: ArchiveConfig, timeout_s: float = 5.0) -> Health:
    """`timeout_s` is there for the contract; a local folder answers at once."""
    return check_folder(config.path)


def check_folder(path: Path) -> Health:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return Health(False, str(path), f"{existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        return Health(False, str(path), f"{existing} is not writable")
    return Health(True, str(path), "writable" if existing == path else f"will be created in {existing}")
