"""What the archive sink needs beyond logpipe's core: nothing (pyarrow, polars and numpy are core),
so the default sink works on a laptop with no extra installed."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from logpipe.sinks.archive.config import ArchiveConfig


def require(config: ArchiveConfig) -> None:
    """Nothing to check (the contract every sink folder keeps: `deps.require(settings)`)."""
