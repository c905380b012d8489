"""`logpipe ingest`: consume canonical records from Kafka as a member of a consumer group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from logpipe.archive.layout import DEFAULT_ARCHIVE
from logpipe.cli.app import app
from logpipe.words import counted


@app.command()
def ingest(
    source: Annotated[str, typer.Option("--from", help="kafka://HOST:PORT/TOPIC to consume.")],
    group: Annotated[str, typer.Option("--group", help="Consumer group: members share the topic's partitions.")],
    to: Annotated[
        list[str], typer.Option("--to", help="Also deliver to es://…, loki://… or kafka://…; repeatable.")
    ] = (),  # type: ignore[assignment]
    archive: Annotated[Path, typer.Option("--archive", help="Archive folder.")] = DEFAULT_ARCHIVE,
    no_archive: Annotated[bool, typer.Option("--no-archive", help="Keep only dead letters in the archive.")] = False,
    flush_interval: Annotated[
        float, typer.Option("--flush-interval", help="Seconds between flushes (and offset commits).")
    ] = 1.0,
    max_records: Annotated[int, typer.Option("--max-records", help="Most records fetched per poll.")] = 50_000,
    exit_when_idle: Annotated[
        float | None,
        typer.Option("--exit-when-idle", help="Leave after this many seconds without messages (backfills)."),
    ] = None,
    metrics_addr: Annotated[
        str | None,
        typer.Option("--metrics-addr", help="Serve /metrics, /health and /ready on HOST:PORT (127.0.0.1:9108)."),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="Level of logpipe's own JSON log on stderr (default INFO).")
    ] = None,
) -> None:
    """Deliver records from Kafka to sinks; offsets are committed only after every sink has them."""
    from logpipe.memory import tune_agent_process

    tune_agent_process()
    import logging
    import sys

    from logpipe.errors import UsageError
    from logpipe.ingest import IngestOptions, run_ingest
    from logpipe.observe.logs import parse_level, setup_logging
    from logpipe.sinks.kafka.config import parse_kafka_url

    setup_logging(parse_level(log_level) if log_level else "INFO")  # quiets aiokafka's chatter too
    log = logging.getLogger("logpipe.ingest")
    config = parse_kafka_url(source)
    from logpipe.sinks.kafka.deps import require_consumer

    require_consumer()  # before anything starts: a missing aiokafka/cramjam is one line, not a traceback
    if not group.strip():
        raise UsageError("--group must name the consumer group")
    options = IngestOptions(
        source=config,
        group=group,
        flush_interval_s=flush_interval,
        max_records=max(1, max_records),
        stop_when_idle_s=exit_when_idle,
    )
    result = run_ingest(options, to, archive=archive, archive_records=not no_archive, metrics_addr=metrics_addr)
    stats = result.stats
    summary = [
        *result.sink_totals,
        f"ingest {config.display_url} group {group}: {counted(stats.messages, 'message')}, "
        f"{counted(stats.records, 'record')}, {stats.rejected:,} rejected, {counted(stats.commits, 'commit')}, "
        f"{stats.records / stats.elapsed:,.0f} records/s",
    ]
    if exit_when_idle is not None or sys.stderr.isatty():  # a backfill, or a person watching: text
        sys.stderr.write("".join(f"{line}\n" for line in summary))
    else:
        for line in summary[:-1]:
            log.info(line, extra={"event": "sink_totals"})
        log.info(
            "stopped",
            extra={
                "event": "stopped",
                "messages": stats.messages,
                "records": stats.records,
                "rejected": stats.rejected,
                "commits": stats.commits,
                "elapsed_s": round(stats.elapsed, 3),
            },
        )
