"""`logpipe ingest`: consume canonical records from Kafka as a member of a consumer group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from logpipe.cli.app import app


@app.command()
def ingest(
    source: Annotated[str, typer.Option("--from", help="kafka://HOST:PORT/TOPIC to consume.")],
    group: Annotated[str, typer.Option("--group", help="Consumer group: members share the topic's partitions.")],
    to: Annotated[list[str], typer.Option("--to", help="Also deliver to es://…, loki://… or kafka://…; repeatable.")] = (),  # type: ignore[assignment]
    archive: Annotated[Path, typer.Option("--archive", help="Archive folder.")] = Path("logpipe-data"),
    no_archive: Annotated[bool, typer.Option("--no-archive", help="Keep only dead letters in the archive.")] = False,
    flush_interval: Annotated[float, typer.Option("--flush-interval", help="Seconds between flushes (and offset commits).")] = 1.0,
    max_records: Annotated[int, typer.Option("--max-records", help="Most records fetched per poll.")] = 50_000,
    exit_when_idle: Annotated[float | None, typer.Option("--exit-when-idle", help="Leave after this many seconds without messages (backfills).")] = None,
) -> None:
    """Deliver records from Kafka to sinks; offsets are committed only after every sink has them."""
    from logpipe.memory import tune_agent_process

    tune_agent_process()
    import asyncio
    import logging
    import sys

    from logpipe.errors import UsageError
    from logpipe.ingest import IngestOptions, IngestRunner
    from logpipe.sinks.archive import ArchiveSink
    from logpipe.sinks.kafka.config import parse_kafka_url
    from logpipe.sinks.targets import build_sinks, describe

    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # its rebalance chatter is not ours to print
    config = parse_kafka_url(source)
    if not group.strip():
        raise UsageError("--group must name the consumer group")
    archive_sink = ArchiveSink(archive, None, shared=True)
    try:
        sinks = build_sinks(archive_sink, to, archive_records=not no_archive)
    except BaseException:
        archive_sink.close()
        raise
    runner = IngestRunner(
        IngestOptions(
            source=config,
            group=group,
            flush_interval_s=flush_interval,
            max_records=max(1, max_records),
            stop_when_idle_s=exit_when_idle,
        ),
        sinks,
        archive_sink,
    )
    try:
        stats = asyncio.run(runner.run())
    finally:
        for sink in sinks:
            sink.close()
    for line in describe(sinks):
        sys.stderr.write(f"{line}\n")
    sys.stderr.write(
        f"ingest {config.display_url} group {group}: {stats.messages:,} messages, {stats.records:,} records, "
        f"{stats.rejected:,} rejected, {stats.commits:,} commits, {stats.records / stats.elapsed:,.0f} records/s\n"
    )
