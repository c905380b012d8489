"""`logpipe archive …`: maintenance of the local archive."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from logpipe.archive.layout import DEFAULT_ARCHIVE
from logpipe.cli.app import app
from logpipe.words import counted

archive_app = typer.Typer(help="Maintain the local Parquet archive.", no_args_is_help=True)
app.add_typer(archive_app, name="archive")


@archive_app.command("compact")
def compact(
    archive: Annotated[Path, typer.Option("--archive", help="Archive folder.")] = DEFAULT_ARCHIVE,
    min_files: Annotated[
        int, typer.Option("--min-files", help="Merge a partition's small parts when it has at least this many.")
    ] = 2,
) -> None:
    """Merge small parts of each partition into one (the agent also does this by itself)."""
    from logpipe.archive import access
    from logpipe.archive import compact as compaction
    from logpipe.archive.layout import COMPACT_LOCK_FILE, remove_temp_files
    from logpipe.errors import ArchiveError
    from logpipe.sinks.archive import ArchiveLock

    if not archive.is_dir():
        raise ArchiveError(f"no archive at {archive}")
    umask = access.follow(archive)  # the merged parts are readable as the archive's folder says
    lock = ArchiveLock(archive, shared=True)  # fails while an agent writes; ingest consumers may
    compacting = ArchiveLock(archive, name=COMPACT_LOCK_FILE)
    try:
        remove_temp_files(archive, older_than_s=3600)
        compaction.read_journal(archive)  # a journal naming anything but parts: one red line, nothing done
        result = compaction.compact(archive, max(min_files, 2))
    finally:
        compacting.release()
        lock.release()
        os.umask(umask)
    typer.echo(
        f"compacted {counted(result.partitions, 'partition')}: {counted(result.files_in, 'part')} -> {result.files_out},"
        f" {counted(result.rows, 'row')}"
    )
    if result.deferred:
        typer.echo("readers held the archive: the replaced parts go at the next compaction (queries do not count them)")
