"""Against LokiDouble (Loki's documented push API, in-process): answers, bounds, guard, order, headers.

Every test runs the real `logpipe ship` CLI on a real file; the double records each push.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
from pathlib import Path

from lokihelp import double_target, ship_once, source_lines, ts_ns, write_lines

from tests.support.archive import checkpoints
from tests.support.cli import LOGPIPE, ROOT
from tests.support.cli import run_cli as logpipe
from tests.support.loki_double import DoubleServer, LokiDouble
from tests.support.net import free_port
from tests.support.process import Lines
from tests.support.wait import wait_until


def _seqs(server: DoubleServer) -> list[int]:
    return sorted(json.loads(e.line)["attrs"]["seq"] for _, e in server.double.all_entries())


class TestAnswers:
    def test_429_and_503_are_retried_until_accepted(self, double: DoubleServer, tmp_path: Path) -> None:
        """Throttled and failing pushes are sent again; every record is stored once."""
        double.double.script = [429, 503]
        write_lines(tmp_path / "app.log", source_lines(300, "e"))
        run = ship_once(tmp_path / "app.log", tmp_path / "a", double_target(double))
        assert run.code == 0, run.err
        assert [p.status for p in double.double.pushes] == [429, 503, 204]
        assert _seqs(double) == list(range(300))
        assert "retried 2 requests (1 answered 429)" in run.err

    def test_400_reasons_are_dead_lettered_and_the_rest_kept(self, double: DoubleServer, tmp_path: Path) -> None:
        """Entries Loki refuses as too old land in dead_letters with Loki's reason; the checkpoint moves."""
        records = source_lines(400, "e")
        cut = ts_ns(records[200])
        double.double.reject_before_ns = cut
        log = tmp_path / "app.log"
        write_lines(log, records)
        run = ship_once(log, tmp_path / "a", double_target(double))
        assert run.code == 0, run.err
        old = sorted(r["seq"] for r in records if ts_ns(r) < cut)
        assert _seqs(double) == sorted(r["seq"] for r in records if ts_ns(r) >= cut)
        sql = logpipe(
            "sql",
            "SELECT reason, detail, raw FROM dead_letters",
            "--archive",
            str(tmp_path / "a"),
            "--format",
            "ndjson",
        )
        assert sql.code == 0, sql.err
        dead = [json.loads(line) for line in sql.out.splitlines()]
        assert {d["reason"] for d in dead} == {"loki_rejected"}
        assert all("HTTP 400" in d["detail"] and "timestamp too old" in d["detail"] for d in dead)
        dead_seqs = {json.loads(d["raw"])["attrs"]["seq"] for d in dead}
        # Loki names refused entries' times to the second: entries kept in that same second are
        # dead-lettered too (reported, never lost); none outside it.
        boundary = {r["seq"] for r in records if ts_ns(r) // 10**9 == cut // 10**9}
        assert set(old) <= dead_seqs <= set(old) | boundary
        pushes = len(double.double.pushes)
        again = ship_once(log, tmp_path / "a", double_target(double))
        assert again.code == 0 and len(double.double.pushes) == pushes  # nothing left to send

    def test_401_stops_with_a_clear_error_and_keeps_the_checkpoint(self, double: DoubleServer, tmp_path: Path) -> None:
        """Bad credentials cannot be fixed by retrying: non-zero exit, nothing committed."""
        double.double.require_auth = "Bearer right"
        log = tmp_path / "app.log"
        write_lines(log, source_lines(50, "e"))
        run = ship_once(log, tmp_path / "a", double_target(double), env={"LOGPIPE_LOKI_TOKEN": "wrong-token-x"})
        assert run.code != 0
        assert "HTTP 401" in run.err and "LOGPIPE_LOKI_TOKEN" in run.err
        assert "wrong-token-x" not in run.err + run.out
        ok = ship_once(log, tmp_path / "a", double_target(double), env={"LOGPIPE_LOKI_TOKEN": "right"})
        assert ok.code == 0, ok.err
        assert _seqs(double) == list(range(50))


class TestBatches:
    def test_requests_stay_under_the_entry_and_byte_bounds(self, double: DoubleServer, tmp_path: Path) -> None:
        """batch_entries and batch_kb cut the pushes; nothing is lost across the cuts."""
        write_lines(tmp_path / "app.log", source_lines(1000, "e"))
        run = ship_once(
            tmp_path / "app.log",
            tmp_path / "a",
            double_target(double, batch_entries="60", batch_kb="16", encoding="json"),
        )
        assert run.code == 0, run.err
        pushes = double.double.pushes
        sizes = [sum(len(entries) for _, entries in p.streams) for p in pushes]
        assert max(sizes) <= 60 and len(pushes) >= 1000 // 60
        assert max(p.raw_bytes for p in pushes) <= 16 * 1024 + 1024  # one entry may straddle the bound
        assert _seqs(double) == list(range(1000))

    def test_entries_are_in_time_order_within_each_stream(self, double: DoubleServer, tmp_path: Path) -> None:
        """A file written out of order still reaches Loki sorted per stream, per request and overall."""
        write_lines(tmp_path / "app.log", source_lines(2000, "e", shuffle=True))
        run = ship_once(tmp_path / "app.log", tmp_path / "a", double_target(double, batch_entries="300"))
        assert run.code == 0, run.err
        last: dict[str, int] = {}
        for push in double.double.pushes:
            for labels, entries in push.streams:
                stamps = [e.ts_ns for e in entries]
                assert stamps == sorted(stamps)
                key = json.dumps(labels, sort_keys=True)
                assert stamps[0] >= last.get(key, 0)
                last[key] = stamps[-1]
        assert _seqs(double) == list(range(2000))


class TestLabels:
    def test_a_label_past_its_limit_moves_to_metadata(self, double: DoubleServer, tmp_path: Path) -> None:
        """label_limit=2 with three services: `service` becomes metadata, with a warning saying why."""
        write_lines(tmp_path / "app.log", source_lines(300, "e"))
        run = ship_once(tmp_path / "app.log", tmp_path / "a", double_target(double, label_limit="2"))
        assert run.code == 0, run.err
        assert "'service' passed 3 distinct values" in run.err and "too many streams" in run.err
        for labels, entry in double.double.all_entries():
            assert "service" not in labels and set(labels) == {"level", "host", "env"}
            assert entry.metadata["service"] == json.loads(entry.line)["service"]
        assert len(double.double.all_entries()) == 300

    def test_a_per_request_label_is_refused_at_start(self, double: DoubleServer, tmp_path: Path) -> None:
        """labels=…request_id is a usage error before anything is read."""
        write_lines(tmp_path / "app.log", source_lines(10, "e"))
        run = ship_once(tmp_path / "app.log", tmp_path / "a", double_target(double, labels="level,request_id"))
        assert run.code == 2
        assert "request_id" in run.err and "too many streams" in run.err
        assert not double.double.pushes

    def test_level_must_be_a_label(self, double: DoubleServer, tmp_path: Path) -> None:
        write_lines(tmp_path / "app.log", source_lines(10, "e"))
        run = ship_once(tmp_path / "app.log", tmp_path / "a", double_target(double, labels="service"))
        assert run.code == 2 and "level" in run.err and "retention" in run.err


class TestHeaders:
    def test_tenant_and_basic_auth_are_sent_and_never_printed(self, double: DoubleServer, tmp_path: Path) -> None:
        """X-Scope-OrgID from ?tenant=; basic auth from the URL; the password appears nowhere in output."""
        write_lines(tmp_path / "app.log", source_lines(20, "e"))
        target = double_target(double, tenant="team-a").replace("loki://", "loki://ship:s3cr3t-pw@")
        run = ship_once(tmp_path / "app.log", tmp_path / "a", target)
        assert run.code == 0, run.err
        headers = double.double.pushes[0].headers
        assert headers["x-scope-orgid"] == "team-a"
        assert headers["authorization"] == "Basic " + base64.b64encode(b"ship:s3cr3t-pw").decode()
        assert headers["content-type"] == "application/x-protobuf"
        assert "s3cr3t-pw" not in run.err + run.out

    def test_bearer_token_from_the_environment(self, double: DoubleServer, tmp_path: Path) -> None:
        write_lines(tmp_path / "app.log", source_lines(20, "e"))
        run = ship_once(
            tmp_path / "app.log",
            tmp_path / "a",
            double_target(double, encoding="json", gzip="true"),
            env={"LOGPIPE_LOKI_TOKEN": "tok-123", "LOGPIPE_LOKI_TENANT": "t9"},
        )
        assert run.code == 0, run.err
        headers = double.double.pushes[0].headers
        assert headers["authorization"] == "Bearer tok-123" and headers["x-scope-orgid"] == "t9"
        assert headers["content-encoding"] == "gzip" and headers["content-type"] == "application/json"


class TestQueryAndDeleteApi:
    def test_the_double_serves_query_range_and_delete(self, double: DoubleServer, tmp_path: Path) -> None:
        """What issue 7 will use: query_range by selector, delete requests listed and cancelled."""
        import urllib.request

        write_lines(tmp_path / "app.log", source_lines(30, "e"))
        assert ship_once(tmp_path / "app.log", tmp_path / "a", double_target(double)).code == 0
        base = f"http://{double.url}/loki/api/v1"
        with urllib.request.urlopen(f"{base}/query_range?query=%7Blevel%3D%22error%22%7D&limit=1000") as r:
            body = json.load(r)
        assert body["status"] == "success"
        assert all(s["stream"]["level"] == "error" for s in body["data"]["result"])
        post = urllib.request.Request(f"{base}/delete?query=%7Blevel%3D%22debug%22%7D&start=0&end=10", method="POST")
        assert urllib.request.urlopen(post).status == 204
        with urllib.request.urlopen(f"{base}/delete") as r:
            assert [d["query"] for d in json.load(r)] == ['{level="debug"}']


def test_loki_down_then_up_loses_nothing(tmp_path: Path) -> None:
    """A following agent keeps retrying while Loki is down and delivers everything once it is up."""
    port = free_port()
    log = tmp_path / "app.log"
    records = source_lines(1000, "e")
    write_lines(log, records[:500])
    target = f"loki://127.0.0.1:{port}?max_backoff=1"
    proc = subprocess.Popen(
        [
            *LOGPIPE,
            "ship",
            "--follow",
            str(log),
            "--archive",
            str(tmp_path / "a"),
            "--no-progress",
            "--flush-interval",
            "0.2",
            "--to",
            target,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    stderr = Lines(proc.stderr)
    server = None
    try:
        stderr.wait_for("retrying a push")  # it read the first 500 lines and Loki is not there
        assert proc.poll() is None, stderr.text()
        # Committed positions (byte offsets) while Loki has none of the lines: none past the start.
        assert all(c["offset"] == 0 for c in checkpoints(tmp_path / "a").values()), checkpoints(tmp_path / "a")
        write_lines(log, records[500:])
        server = LokiDouble().serve(port)
        double = server.double
        wait_until("all 1000 entries in the double", lambda: len(double.all_entries()) >= 1000, 30, every_s=0.2)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        err = stderr.close()
        assert proc.returncode == 0, err
        assert _seqs(server) == list(range(1000))
        # Once Loki took everything, the position moved to the end of the file.
        assert [c["offset"] for c in checkpoints(tmp_path / "a").values()] == [log.stat().st_size]
    finally:
        if proc.poll() is None:
            proc.kill()
        if server is not None:
            server.stop()
