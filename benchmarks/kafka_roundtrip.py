"""Kafka end to end: `logpipe ship --to kafka://` then `logpipe ingest` into an archive, beside a
bare aiokafka produce/consume loop moving the same documents, in the same run.

    python benchmarks/kafka_roundtrip.py [--lines 1000000] [--bootstrap 127.0.0.1:19092] [--partitions 4]
                                         [--mode record|batch]

Needs a broker (`scripts/services up kafka`). The bare loop produces the same JSON documents
(the canonical records logpipe would send, prepared before the clock starts) with the same
producer settings (idempotent, acks=all, zstd, linger 20 ms, 1 MiB batches) using plain
`send()`, then consumes them with `getmany()` and decodes each with orjson. logpipe's figure is
the two whole processes (ship, then ingest): its parsing, normalising and archiving included.
`--mode batch` runs logpipe with `?mode=batch` (1000 records a message); the bare loop always
sends one message per record. Prints records/s for each side and the ratio (target: logpipe >=
70% of the bare loop).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ship_throughput import WORK, write_log  # noqa: E402


async def create_topic(bootstrap: str, partitions: int) -> str:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    name = f"bench-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def bare_loop(bootstrap: str, topic: str, docs: list[tuple[bytes | None, bytes]]) -> tuple[float, float]:
    import orjson
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    start = time.perf_counter()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        compression_type="zstd",
        linger_ms=20,
        max_batch_size=1 << 20,
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in docs]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    produced = time.perf_counter()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bare-{topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
        fetch_max_bytes=32 << 20,
    )
    await consumer.start()
    seen = 0
    try:
        while seen < len(docs):
            fetched = await consumer.getmany(timeout_ms=1000, max_records=50_000)
            for messages in fetched.values():
                for m in messages:
                    orjson.loads(m.value)
                seen += len(messages)
            if fetched:
                await consumer.commit()
    finally:
        await consumer.stop()
    return produced - start, time.perf_counter() - produced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--mode", choices=("record", "batch"), default="record")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    log = WORK / f"ship-{args.lines}.log"
    if not log.exists():
        write_log(log, args.lines)
    logpipe = str(Path(sys.executable).with_name("logpipe"))
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        topic = asyncio.run(create_topic(args.bootstrap, args.partitions))
        url = f"kafka://{args.bootstrap}/{topic}?mode={args.mode}"
        t0 = time.perf_counter()
        subprocess.run(
            [
                logpipe,
                "ship",
                "--once",
                str(log),
                "--no-archive",
                "--archive",
                f"{tmp}/agent",
                "--to",
                url,
                "--no-progress",
            ],
            check=True,
            capture_output=True,
        )
        t1 = time.perf_counter()
        subprocess.run(
            [
                logpipe,
                "ingest",
                "--from",
                url,
                "--group",
                "bench",
                "--archive",
                f"{tmp}/central",
                "--exit-when-idle",
                "1",
            ],
            check=True,
            capture_output=True,
        )
        t2 = time.perf_counter()
        ours_produce, ours_consume = t1 - t0, t2 - t1 - 1.0  # less the idle second before leaving

        # The same documents for the bare loop, prepared outside its clock.
        import pyarrow.parquet as pq

        from logpipe.sinks.jsondoc import documents

        table = pq.read_table(f"{tmp}/central/logs", partitioning=None)
        docs = [
            (None if k is None else k.encode(), d.encode())
            for k, d in zip(table.column("request_id").to_pylist(), documents(table).to_list(), strict=True)
        ]
        bare_topic = asyncio.run(create_topic(args.bootstrap, args.partitions))
        bare_produce, bare_consume = asyncio.run(bare_loop(args.bootstrap, bare_topic, docs))
    n = args.lines
    ours, bare = ours_produce + ours_consume, bare_produce + bare_consume
    print(f"records: {n:,}; partitions: {args.partitions}; logpipe mode: {args.mode}")
    print(
        f"logpipe  produce {n / ours_produce:>10,.0f}/s  consume {n / ours_consume:>10,.0f}/s  end to end {n / ours:>10,.0f}/s ({ours:.1f} s)"
    )
    print(
        f"bare     produce {n / bare_produce:>10,.0f}/s  consume {n / bare_consume:>10,.0f}/s  end to end {n / bare:>10,.0f}/s ({bare:.1f} s)"
    )
    print(f"ratio logpipe/bare end to end: {bare / ours:.2f}")


if __name__ == "__main__":
    main()
