"""The sink contract (logpipe.sinks.base.Sink), proved against every sink and its real store.

Each test runs for the archive (a local folder), OpenSearch and Elasticsearch, Loki's push
protocol (real VictoriaLogs) and Kafka (a real broker), and reads what it wrote back from the
store with that store's own client, never with logpipe. An outage is a local TCP proxy the test
stops and starts (the shared servers are never touched). The archive has no server to lose, so
the outage tests run over the four networked sinks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from contracthelp import (
    ROOT,
    LokiFront,
    Proxy,
    archive_dead_letters,
    archive_ids,
    es_ids,
    es_wipe,
    kafka_ids,
    kafka_topic,
    vl_ids,
)

from logpipe.errors import TransientError
from logpipe.model import Batch, FlushResult, Reject
from logpipe.sinks.base import Sink
from logpipe.sinks.meter import SinkMeter
from tests.support.services import service_env
from tests.support.wait import wait_until

pytestmark = pytest.mark.services

ENV = service_env()
VL_PATH = "/insert/loki/api/v1/push?disable_message_parsing=1"  # the line kept verbatim in _msg
KINDS = ("archive", "opensearch", "elasticsearch", "loki", "kafka")
NETWORKED = KINDS[1:]


def host_port(url: str) -> tuple[str, int]:
    netloc = url.split("://", 1)[-1].rstrip("/")
    host, port = netloc.rsplit(":", 1)
    return host, int(port)


# ----------------------------------------------------------------------------------- records


def records(ns: str, seqs: range, *, ts: datetime | None = None, attrs: str = "{}") -> Any:
    """Canonical records of one test: service = the test's namespace, event_id = ns-seq."""
    import pyarrow as pa

    from logpipe.schema import record_schema

    when = ts or datetime.now(UTC) - timedelta(minutes=5)
    rows = [
        {
            "ts": when + timedelta(milliseconds=seq),
            "level": "INFO",
            "message": f"contract {seq}",
            "service": ns,
            "host": "node-1",
            "attrs": attrs,
            "source": "app.log",
            "offset": seq * 100,
            "event_id": f"{ns}-{seq}",
        }
        for seq in seqs
    ]
    return pa.Table.from_pylist(rows, schema=record_schema())


def batch(ns: str, seqs: range, table: Any = None, rejects: tuple[Reject, ...] = ()) -> Batch:
    table = records(ns, seqs) if table is None else table
    return Batch(ns, "app.log", seqs.start * 100, seqs.stop * 100, table, rejects, time.time_ns() // 1000)


class CountingMeter(SinkMeter):
    """The meter a sink reports to: counts retries, so a test waits for the event, not a time."""

    def __init__(self) -> None:
        self.retries = 0

    def retrying(self, records: int) -> None:
        self.retries += 1


# ----------------------------------------------------------------------------------- the stores


@dataclass
class Store:
    """One real store and how to open a sink on it (at its own address, or through a proxy)."""

    kind: str
    ns: str  # the test's own namespace: the service of its records, their event ids' prefix
    upstream: tuple[str, int] | None  # None: the archive, a local folder
    url_for: Callable[[str], str]  # address -> a --to URL
    read: Callable[[], list[str]]  # event ids the store holds, read with its own client
    letters: list[Batch] = field(default_factory=list)
    tmp: Path = Path()
    cleanup: Callable[[], None] = lambda: None

    def open(self, address: str | None = None) -> Sink:
        from logpipe.sinks.registry import open_sink, parse_sink_url

        if self.upstream is None:
            from logpipe.checkpoints import CheckpointStore
            from logpipe.sinks.archive import ArchiveSink

            return ArchiveSink(self.tmp / "archive", CheckpointStore(self.tmp / "archive" / "state"))
        host, port = self.upstream
        target = self.url_for(address or f"{host}:{port}")
        return open_sink(parse_sink_url(target), dead_letters=self.letters.append)

    def read_until(self, count: int, timeout_s: float = 30.0) -> list[str]:
        """What the store holds once it shows `count` records (Loki and ES make writes visible
        within seconds: wait for them, not a fixed time)."""
        held: list[str] = []

        def enough() -> bool:
            held[:] = self.read()
            return len(held) >= count

        wait_until(f"{count} records in {self.kind}", enough, timeout_s, every_s=0.3)
        return held


def make_store(kind: str, ns: str, tmp: Path) -> Store:
    if kind == "archive":
        return Store(kind, ns, None, lambda _: "", lambda: archive_ids(tmp / "archive"), tmp=tmp)
    if kind in ("opensearch", "elasticsearch"):
        url = ENV[f"LOGPIPE_TEST_{kind.upper()}"]
        prefix = f"ct-{ns}-"
        query = f"index={prefix}{{date}}&template={prefix}template&replicas=0"
        return Store(
            kind,
            ns,
            host_port(url),
            lambda a: f"es://{a}?{query}",
            lambda: es_ids(url, prefix),
            cleanup=lambda: es_wipe(url, prefix),
        )
    if kind == "loki":
        url = ENV["LOGPIPE_TEST_VICTORIALOGS"]
        query = urllib.parse.urlencode({"encoding": "json", "path": VL_PATH, "labels": "service,level"})
        return Store(kind, ns, host_port(url), lambda a: f"loki://{a}?{query}", lambda: vl_ids(url, ns))
    bootstrap = ENV["LOGPIPE_TEST_KAFKA"]
    topic = kafka_topic(bootstrap)
    return Store(
        kind,
        ns,
        host_port(bootstrap),
        lambda a: f"kafka://{a}/{topic}?linger_ms=0&compression=none",
        lambda: kafka_ids(bootstrap, topic),
    )


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = make_store(request.param, uuid.uuid4().hex[:10], tmp_path)
    yield made
    made.cleanup()


@pytest.fixture(params=NETWORKED)
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = make_store(request.param, uuid.uuid4().hex[:10], tmp_path)
    yield made
    made.cleanup()


@pytest.fixture(params=[k for k in NETWORKED if k != "kafka"])
def http_remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The sinks whose every request goes through the proxy (Kafka's producer, after its
    bootstrap, talks to the broker the metadata names)."""
    made = make_store(request.param, uuid.uuid4().hex[:10], tmp_path)
    yield made
    made.cleanup()


def flush_in_thread(sink: Sink) -> tuple[threading.Thread, list[Any]]:
    """Run `sink.flush()` on a worker (as the pipeline does); the list gets its result or error."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(sink.flush())
        except BaseException as exc:
            out.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    return worker, out


def expected(ns: str, seqs: range) -> list[str]:
    return sorted(f"{ns}-{seq}" for seq in seqs)


# ----------------------------------------------------------------------------------- the contract


class TestWriteAndAck:
    def test_a_batch_is_in_the_store_when_flush_returns_and_not_before(self, store: Store) -> None:
        """send only buffers (the store has nothing, the bytes are counted); flush returns once the
        store holds every record, and the sink holds nothing any more."""
        sink = store.open()
        try:
            sink.send(batch(store.ns, range(50)))
            assert sink.buffered_bytes() > 0
            assert store.read() == [], "a record is in the store before flush: ack would not mean durable"
            result = sink.flush()
            assert (result.records, result.dead_letters) == (50, 0)
            assert (sink.buffered_bytes(), sink.in_flight_bytes()) == (0, 0)
            assert sorted(store.read_until(50)) == expected(store.ns, range(50))
        finally:
            sink.close()
        assert store.letters == []

    def test_health_answers_for_the_real_store(self, store: Store) -> None:
        sink = store.open()
        try:
            health = sink.health(timeout_s=10)
        finally:
            sink.close()
        assert health.ok, health.detail
        assert health.target and health.detail


class TestHealth:
    def test_health_says_so_when_the_server_cannot_be_reached(self, remote: Store) -> None:
        proxy = Proxy(remote.upstream)  # type: ignore[arg-type]  never started: refused
        sink = remote.open(proxy.address)
        try:
            health = sink.health(timeout_s=5)
        finally:
            sink.close()
        assert not health.ok and health.detail
        assert proxy.address in health.target  # where it looked, without credentials


class TestRestart:
    def test_a_new_sink_over_the_same_store_loses_nothing_and_duplicates_nothing_where_it_can(
        self, store: Store
    ) -> None:
        """The first sink flushed 0-39 but the checkpoint never moved (a crash): the next run sends
        0-39 again with 40-79. Every record is held; the archive (its ledger) and the search
        engines (_id = event_id) hold each once; Loki and Kafka may hold a re-sent one twice."""
        first = store.open()
        try:
            first.send(batch(store.ns, range(40)))
            first.flush()
        finally:
            first.close()
        second = store.open()
        try:
            second.send(batch(store.ns, range(40)))
            second.send(batch(store.ns, range(40, 80)))
            second.flush()
        finally:
            second.close()
        held = store.read_until(80)
        assert sorted(set(held)) == expected(store.ns, range(80))
        counts = {event: held.count(event) for event in set(held)}
        if store.kind in ("archive", "opensearch", "elasticsearch"):
            assert len(held) == 80, "a re-read range was written twice"
        else:
            assert all(counts[e] == 1 for e in expected(store.ns, range(40, 80)))
            assert all(counts[e] <= 2 for e in expected(store.ns, range(40)))


class TestOutage:
    def test_a_server_that_is_down_holds_the_flush_until_it_is_back(self, remote: Store) -> None:
        """Unreachable (connections refused): flush retries and does not return, acknowledges
        nothing and holds the batch in flight; when the server is back, flush delivers it all."""
        proxy = Proxy(remote.upstream)  # type: ignore[arg-type]
        sink = remote.open(proxy.address)
        meter = CountingMeter()
        sink.meter = meter  # type: ignore[attr-defined]
        try:
            sink.send(batch(remote.ns, range(30)))
            worker, out = flush_in_thread(sink)
            wait_until("the sink to retry twice", lambda: meter.retries >= 2, timeout_s=60)
            assert worker.is_alive() and out == [], "flush returned while the server was down"
            assert sink.in_flight_bytes() > 0
            assert remote.read() == []
            proxy.start()
            worker.join(120)
            assert not worker.is_alive()
            assert isinstance(out[0], FlushResult) and out[0].records == 30, out
            assert sorted(remote.read_until(30)) == expected(remote.ns, range(30))
        finally:
            sink.close()
            proxy.stop()

    def test_a_server_lost_between_flushes_is_reconnected_and_nothing_is_lost(self, http_remote: Store) -> None:
        """The server worked, then went away (its open connections cut) and came back: the next
        flush retries, reconnects and delivers, and the first flush's records are all still there.
        Kafka's client reaches the broker it is told of, not the proxy, after its bootstrap, so
        for Kafka the cut is the bootstrap (the test above)."""
        proxy = Proxy(http_remote.upstream)  # type: ignore[arg-type]
        proxy.start()
        sink = http_remote.open(proxy.address)
        meter = CountingMeter()
        sink.meter = meter  # type: ignore[attr-defined]
        try:
            sink.send(batch(http_remote.ns, range(20)))
            assert sink.flush().records == 20
            proxy.stop()
            sink.send(batch(http_remote.ns, range(20, 40)))
            worker, out = flush_in_thread(sink)
            wait_until("the sink to retry", lambda: meter.retries >= 2, timeout_s=60)
            assert worker.is_alive() and out == []
            proxy.start()
            worker.join(120)
            assert isinstance(out[0], FlushResult) and out[0].records == 20, out
            assert sorted(http_remote.read_until(40)) == expected(http_remote.ns, range(40))
        finally:
            sink.close()
            proxy.stop()

    def test_interrupt_during_an_outage_returns_promptly_and_acknowledges_nothing(self, remote: Store) -> None:
        """SIGTERM's path: interrupt() ends the backoff wait at once (an Event, not a sleep); the
        flush raises TransientError, so no checkpoint moves; the store holds nothing."""
        proxy = Proxy(remote.upstream)  # type: ignore[arg-type]
        sink = remote.open(proxy.address)
        meter = CountingMeter()
        sink.meter = meter  # type: ignore[attr-defined]
        try:
            sink.send(batch(remote.ns, range(30)))
            worker, out = flush_in_thread(sink)
            # Five retries in, the next backoff is 1.6-6.4 s: a sleep would outlast the bound below.
            wait_until("the sink to retry five times", lambda: meter.retries >= 5, timeout_s=60)
            started = time.monotonic()
            sink.interrupt()
            worker.join(15)
            took = time.monotonic() - started
        finally:
            sink.close()
        assert not worker.is_alive() and took < 1.5, f"interrupt took {took:.1f}s"
        assert len(out) == 1 and isinstance(out[0], TransientError), out
        assert "will be read again" in str(out[0])
        assert remote.read() == []


def write_log(path: Path, n: int) -> None:
    import json

    stamp = datetime.now(UTC).isoformat()
    path.write_text(
        "".join(
            json.dumps({"timestamp": stamp, "levelname": "INFO", "message": f"m{i}", "service": "contract", "seq": i})
            + "\n"
            for i in range(n)
        )
    )


class TestSigterm:
    def test_sigterm_while_the_server_is_down_ends_the_agent_without_a_commit(
        self, remote: Store, tmp_path: Path
    ) -> None:
        """A real agent (`logpipe ship`) whose sink is unreachable keeps its place; SIGTERM ends
        it promptly, exit 1, with no checkpoint written and nothing in the archive."""
        proxy = Proxy(remote.upstream)  # type: ignore[arg-type] never started: refused
        log, archive = tmp_path / "app.log", tmp_path / "a"
        write_log(log, 200)
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "logpipe",
                "ship",
                str(log),
                "--archive",
                str(archive),
                "--to",
                remote.url_for(proxy.address),
                "--flush-interval",
                "0.2",
                "--no-progress",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "COLUMNS": "200"},
        )
        err: list[str] = []
        reader = threading.Thread(target=lambda: err.extend(agent.stderr or []), daemon=True)
        reader.start()
        try:
            wait_until("the agent to retry its sink", lambda: any("retrying" in line for line in err), timeout_s=60)
            assert agent.poll() is None, "an unreachable sink must make the agent wait, not exit"
            started = time.monotonic()
            agent.send_signal(signal.SIGTERM)
            code = agent.wait(timeout=30)
            took = time.monotonic() - started
        finally:
            if agent.poll() is None:
                agent.kill()
        reader.join(10)
        text = "".join(err)
        assert code == 1 and took < 15, (code, took, text[-2000:])
        assert "will be read again" in text and "Traceback" not in text
        assert not (archive / "state" / "checkpoints.json").exists()
        assert list(archive.glob("logs/**/*.parquet")) == []


# ----------------------------------------------------------------------------------- dead letters


def doomed(store: Store) -> tuple[Batch, int]:
    """Ten good records and one this store can never take (its seq returned), as each store refuses."""
    import pyarrow as pa

    good = records(store.ns, range(10))
    if store.kind == "archive":  # the archive takes any record: a line that is no record is its dead letter
        return batch(store.ns, range(11), good, (Reject(1000, "not_json", "expected a JSON object", b"{oops"),)), 10
    if store.kind in ("opensearch", "elasticsearch"):  # date_nanos cannot hold 1900: a mapping error
        bad = records(store.ns, range(10, 11), ts=datetime(1900, 1, 1, tzinfo=UTC))
    elif store.kind == "loki":  # older than Loki's window
        bad = records(store.ns, range(10, 11), ts=datetime.now(UTC) - timedelta(days=30))
    else:  # over the broker's message.max.bytes (1 MiB by default)
        bad = records(store.ns, range(10, 11), attrs='{"blob": "%s"}' % ("x" * 1_500_000))
    return batch(store.ns, range(11), pa.concat_tables([good, bad])), 10


class TestDeadLetters:
    def test_what_can_never_succeed_is_dead_lettered_with_its_reason_and_the_rest_delivered(self, store: Store) -> None:
        front = LokiFront(ENV["LOGPIPE_TEST_VICTORIALOGS"], VL_PATH) if store.kind == "loki" else None
        sink = store.open(front.address if front else None)
        try:
            sent, bad = doomed(store)
            sink.send(sent)
            result = sink.flush()
        finally:
            sink.close()
            if front:
                front.stop()
        assert (result.records, result.dead_letters) == (10, 1), result
        assert sorted(store.read_until(10)) == expected(store.ns, range(10))
        if store.kind == "archive":
            letters = [(d["offset"], d["reason"], bytes(d["raw"])) for d in archive_dead_letters(store.tmp / "archive")]
            assert letters == [(1000, "not_json", b"{oops")]
            return
        rejects = [r for b in store.letters for r in b.rejects]
        assert len(rejects) == 1
        assert rejects[0].offset == bad * 100, "the dead letter names the record's place in its source"
        assert f'"{store.ns}-{bad}"' in rejects[0].raw.decode()
        assert rejects[0].reason.endswith("_rejected") and rejects[0].detail
        assert store.letters[0].source_id == store.ns and store.letters[0].path == "app.log"
