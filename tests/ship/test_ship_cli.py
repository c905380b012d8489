"""`logpipe ship --once` and `logpipe sql` driven as a user would: the real CLI on real files."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from shiphelp import Run, archive_rows, archived_seqs, record, write_records

Logpipe = Callable[..., Run]


def _requests(n: int) -> list[dict[str, object]]:
    """n records in requests of 4 lines; only each request's first line names user and session."""
    out: list[dict[str, object]] = []
    for seq in range(n):
        req = f"req-{seq // 4}"
        level = ["INFO", "DEBUG", "WARNING", "ERROR"][seq % 4] if seq % 7 else "INFO"
        extra: dict[str, object] = {}
        if seq % 4 == 0:
            extra = {"user_id": f"user-{seq // 4 % 9}", "session_id": f"sess-{seq // 40}"}
        out.append(record(seq, level=level, request=req, **extra))
    return out


class TestShipOnce:
    def test_every_line_once_with_levels_and_context(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """Every line lands once; levels and filled user/session match a count over the source."""
        records = _requests(2000)
        log = tmp_path / "app.log"
        write_records(log, records)
        res = logpipe("ship", "--once", str(log), "--archive", str(tmp_path / "a"), "--label", "service=shop")
        assert res.code == 0, res.err
        rows = archive_rows(tmp_path / "a", ["level", "user_id", "session_id", "service", "request_id", "attrs"])
        assert sorted(json.loads(r["attrs"])["seq"] for r in rows) == list(range(2000))
        assert Counter(r["level"] for r in rows) == Counter(r["level"] for r in records)
        first_of_request = {r["request_id"]: r for r in records if "user_id" in r}
        for row in rows:
            expected = first_of_request[row["request_id"]]
            assert (row["user_id"], row["session_id"]) == (expected["user_id"], expected["session_id"])
        assert {r["service"] for r in rows} == {"shop"}
        assert "lines" in res.err and "2,000" in res.err

    def test_rerun_ships_only_what_is_new(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """A second --once run resumes at the checkpoint: appended lines only, nothing twice."""
        log, archive = tmp_path / "app.log", str(tmp_path / "a")
        write_records(log, (record(i) for i in range(300)))
        assert logpipe("ship", "--once", str(log), "--archive", archive).code == 0
        assert logpipe("ship", "--once", str(log), "--archive", archive).code == 0
        write_records(log, (record(i) for i in range(300, 450)))
        assert logpipe("ship", "--once", str(log), "--archive", archive).code == 0
        assert archived_seqs(tmp_path / "a") == list(range(450))

    def test_lost_checkpoints_do_not_duplicate(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """With the checkpoint file gone, the archive's own ranges still prevent duplicates."""
        log, archive = tmp_path / "app.log", tmp_path / "a"
        write_records(log, (record(i) for i in range(500)))
        assert logpipe("ship", "--once", str(log), "--archive", str(archive)).code == 0
        (archive / "state" / "checkpoints.json").unlink()
        write_records(log, (record(i) for i in range(500, 520)))
        res = logpipe("ship", "--once", str(log), "--archive", str(archive))
        assert res.code == 0, res.err
        assert archived_seqs(archive) == list(range(520))
        assert "already archived" in res.err

    def test_stdin_is_spooled_and_shipped(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """`ship -` reads standard input to the end; its spool file is removed once delivered."""
        data = "".join(json.dumps(record(i)) + "\n" for i in range(250)).encode()
        res = logpipe("ship", "-", "--archive", str(tmp_path / "a"), stdin=data)
        assert res.code == 0, res.err
        assert archived_seqs(tmp_path / "a") == list(range(250))
        assert list((tmp_path / "a" / "state" / "spool").glob("*.log")) == []

    def test_globs_and_several_files(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """A glob picks up every matching file; each is its own source."""
        for k in range(3):
            write_records(tmp_path / f"svc{k}.log", (record(k * 100 + i) for i in range(100)))
        res = logpipe("ship", "--once", str(tmp_path / "svc*.log"), "--archive", str(tmp_path / "a"))
        assert res.code == 0, res.err
        assert archived_seqs(tmp_path / "a") == list(range(300))
        assert len({r["source"] for r in archive_rows(tmp_path / "a", ["source"])}) == 3

    def test_a_path_with_glob_characters_that_exists_is_that_file(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """`logs[1]/app.log` names that file (as a glob it would mean `logs1/app.log`); a real
        glob beside it still globs."""
        folder = tmp_path / "logs[1]"
        folder.mkdir()
        write_records(folder / "app.log", (record(i) for i in range(50)))
        res = logpipe("ship", "--once", str(folder / "app.log"), "--archive", str(tmp_path / "a"))
        assert res.code == 0, res.err
        assert archived_seqs(tmp_path / "a") == list(range(50))
        write_records(tmp_path / "logs1.log", (record(i) for i in range(50, 60)))
        res = logpipe("ship", "--once", str(tmp_path / "logs[1].log"), "--archive", str(tmp_path / "a"))
        assert res.code == 0, res.err
        assert archived_seqs(tmp_path / "a") == list(range(60))


class TestBadInput:
    def test_rejects_go_to_dead_letters_with_reasons(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """Malformed lines are dead-lettered with source, offset, reason and raw bytes; the rest ship."""
        good = [json.dumps(record(i)).encode() for i in range(3)]
        bad = {
            b"not json at all": "invalid_json",
            b'{"level": "INFO", "x": NaN}': "non_finite_number",
            b"[1, 2, 3]": "not_an_object",
            b'"just a string"': "not_an_object",
            b'{"a": "\xff\xfe"}': "invalid_utf8",
            b'{"a":' * 1001 + b"1" + b"}" * 1001: "too_deep",  # past MAX_DEPTH (1,000)
        }
        lines = [good[0], *bad, good[1], b"", b"   ", good[2]]
        data = b"\n".join(lines) + b"\n"
        (tmp_path / "bad.log").write_bytes(data)
        res = logpipe("ship", "--once", str(tmp_path / "bad.log"), "--archive", str(tmp_path / "a"))
        assert res.code == 0, res.err
        assert archived_seqs(tmp_path / "a") == [0, 1, 2]
        dead = archive_rows(tmp_path / "a", ["offset", "reason", "raw"], table="dead_letters")
        offsets = {}
        pos = 0
        for line in lines:
            offsets[line] = pos
            pos += len(line) + 1
        assert {(bytes(d["raw"]), d["reason"], d["offset"]) for d in dead} == {
            (raw, reason, offsets[raw]) for raw, reason in bad.items()
        }
        assert "rejected" in res.err and "6" in res.err

    def test_oversized_line_is_skipped_not_buffered(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """A line over 1 MiB becomes one `line_too_long` dead letter; the next line still ships."""
        big = json.dumps({"message": "x" * (3 << 20)}).encode()
        data = json.dumps(record(0)).encode() + b"\n" + big + b"\n" + json.dumps(record(1)).encode() + b"\n"
        (tmp_path / "big.log").write_bytes(data)
        res = logpipe("ship", "--once", str(tmp_path / "big.log"), "--archive", str(tmp_path / "a"))
        assert res.code == 0, res.err
        assert archived_seqs(tmp_path / "a") == [0, 1]
        (dead,) = archive_rows(tmp_path / "a", ["reason", "detail", "raw", "offset"], table="dead_letters")
        assert dead["reason"] == "line_too_long" and str(len(big)) in dead["detail"]
        assert dead["offset"] == data.index(big) and bytes(dead["raw"]) == big[: 64 << 10]

    def test_unterminated_last_line_is_read_and_flagged(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """In --once mode a final line without newline is shipped and marked `unterminated`."""
        log = tmp_path / "app.log"
        log.write_text(json.dumps(record(0)) + "\n" + json.dumps(record(1)))
        assert logpipe("ship", "--once", str(log), "--archive", str(tmp_path / "a")).code == 0
        rows = {json.loads(r["attrs"])["seq"]: json.loads(r["attrs"]) for r in archive_rows(tmp_path / "a", ["attrs"])}
        assert rows[1]["_logpipe"]["unterminated"] is True and "_logpipe" not in rows[0]

    def test_crlf_bom_and_blank_lines(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """CRLF endings, a UTF-8 BOM and blank lines neither break records nor become dead letters."""
        body = "\r\n".join(json.dumps(record(i)) for i in range(5)) + "\r\n\r\n\n"
        (tmp_path / "win.log").write_bytes(b"\xef\xbb\xbf" + body.encode())
        assert logpipe("ship", "--once", str(tmp_path / "win.log"), "--archive", str(tmp_path / "a")).code == 0
        assert archived_seqs(tmp_path / "a") == list(range(5))
        assert archive_rows(tmp_path / "a", table="dead_letters") == []


class TestCliErrors:
    def test_missing_archive_is_one_line(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """`logpipe sql` on a missing archive prints one error line, exits 1, shows no traceback."""
        res = logpipe("sql", "SELECT 1", "--archive", str(tmp_path / "nope"))
        assert res.code == 1
        assert res.err.strip().startswith("error: no archive") and len(res.err.strip().splitlines()) == 1

    def test_debug_shows_the_traceback(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """With --debug the same failure comes with its traceback."""
        res = logpipe("--debug", "sql", "SELECT 1", "--archive", str(tmp_path / "nope"))
        assert res.code != 0 and "Traceback" in res.err

    @pytest.mark.parametrize(
        ("statement", "message"),
        [
            ("DROP VIEW logs", "only SELECT"),
            ("COPY (SELECT 1) TO '/tmp/x.csv'", "only SELECT"),
            ("SELECT 1; SELECT 2", "exactly one statement"),
            ("SELEC nonsense", "error"),
        ],
    )
    def test_sql_is_read_only(self, tmp_path: Path, logpipe: Logpipe, statement: str, message: str) -> None:
        """`logpipe sql` refuses anything but one SELECT, in one line with exit code 2."""
        write_records(tmp_path / "app.log", [record(0)])
        assert logpipe("ship", "--once", str(tmp_path / "app.log"), "--archive", str(tmp_path / "a")).code == 0
        res = logpipe("sql", statement, "--archive", str(tmp_path / "a"))
        assert res.code == 2 and message in res.err and "Traceback" not in res.err

    @pytest.mark.parametrize(
        "args",
        [["--label", "novalue"], ["--format", "klingon"], ["--field", "colour=x"], ["--once", "--follow"]],
    )
    def test_bad_ship_options(self, tmp_path: Path, logpipe: Logpipe, args: list[str]) -> None:
        """Bad ship options are usage errors: one line, exit 2, nothing written."""
        write_records(tmp_path / "app.log", [record(0)])
        res = logpipe("ship", "--once", str(tmp_path / "app.log"), "--archive", str(tmp_path / "a"), *args)
        assert res.code == 2 and res.err.startswith("error:") and "Traceback" not in res.err
        assert not (tmp_path / "a").exists()

    def test_once_over_no_file_is_an_error(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """`--once` with globs that match nothing says so in one line and exits 2."""
        res = logpipe("ship", "--once", str(tmp_path / "nothing-*.log"), "--archive", str(tmp_path / "a"))
        assert res.code == 2 and "no file matches" in res.err and "Traceback" not in res.err

    def test_sql_formats(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """`logpipe sql` prints json and csv for scripts with the query's column names."""
        write_records(tmp_path / "app.log", (record(i, level="ERROR" if i % 2 else "INFO") for i in range(10)))
        assert logpipe("ship", "--once", str(tmp_path / "app.log"), "--archive", str(tmp_path / "a")).code == 0
        q = "SELECT level, count(*) AS n FROM logs GROUP BY level ORDER BY level"
        res = logpipe("sql", q, "--archive", str(tmp_path / "a"), "--format", "json")
        assert json.loads(res.out) == [{"level": "ERROR", "n": 5}, {"level": "INFO", "n": 5}]
        res = logpipe("sql", q, "--archive", str(tmp_path / "a"), "--format", "csv")
        assert res.out.splitlines() == ["level,n", "ERROR,5", "INFO,5"]


class TestArchive:
    def test_one_writer_at_a_time(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """A second writer on a locked archive is refused with one line naming the holder."""
        from logpipe.sinks.archive import ArchiveLock

        write_records(tmp_path / "app.log", [record(0)])
        lock = ArchiveLock(tmp_path / "a")
        try:
            res = logpipe("ship", "--once", str(tmp_path / "app.log"), "--archive", str(tmp_path / "a"))
        finally:
            lock.release()
        assert res.code == 1 and f"pid {os.getpid()}" in res.err

    def test_compaction_keeps_rows_and_ranges(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """`archive compact` merges parts without changing rows, and re-shipping still adds nothing."""
        log, archive = tmp_path / "app.log", tmp_path / "a"
        for k in range(4):
            write_records(log, (record(k * 50 + i, level="WARNING") for i in range(50)))
            assert logpipe("ship", "--once", str(log), "--archive", str(archive)).code == 0
        parts = list((archive / "logs").rglob("*.parquet"))
        assert len(parts) >= 4
        res = logpipe("archive", "compact", "--archive", str(archive))
        assert res.code == 0, res.err
        assert len(list((archive / "logs").rglob("*.parquet"))) < len(parts)
        assert archived_seqs(archive) == list(range(200))
        (archive / "state" / "checkpoints.json").unlink()
        assert logpipe("ship", "--once", str(log), "--archive", str(archive)).code == 0
        assert archived_seqs(archive) == list(range(200))

    def test_interrupted_compaction_recovers(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """A compaction journal left by a crash is completed: no row lost, none doubled."""
        import orjson

        from logpipe.archive import compact

        log, archive = tmp_path / "app.log", tmp_path / "a"
        for k in range(3):
            write_records(log, (record(k * 10 + i) for i in range(10)))
            assert logpipe("ship", "--once", str(log), "--archive", str(archive)).code == 0
        folder, parts = next(iter(compact.plan(archive, min_files=2).items()))
        # Simulate a crash after the merged part was renamed into place but before the old ones
        # were removed: the journal names both, and recovery must drop the old parts.
        import pyarrow as pa
        import pyarrow.parquet as pq

        merged = pa.concat_tables([pq.read_table(p, partitioning=None) for p in parts])
        new = folder / "part-merged.parquet"
        pq.write_table(merged, new)
        (archive / "state" / compact.JOURNAL).write_bytes(
            orjson.dumps(
                {
                    "new": new.relative_to(archive).as_posix(),
                    "old": [p.relative_to(archive).as_posix() for p in parts],
                }
            )
        )
        assert sorted(archived_seqs(archive)) != list(range(30))  # doubled while the journal stands
        compact.recover(archive)
        assert archived_seqs(archive) == list(range(30))


def test_concurrent_append_while_shipping_once(tmp_path: Path, logpipe: Logpipe) -> None:
    """Lines appended while --once runs are either shipped now or on the next run, never lost or doubled."""
    log, archive = tmp_path / "app.log", str(tmp_path / "a")
    write_records(log, (record(i) for i in range(5000)))
    stop = threading.Event()

    def append() -> None:
        seq = 5000
        while not stop.is_set() and seq < 8000:
            write_records(log, (record(s) for s in range(seq, seq + 50)))
            seq += 50

    writer = threading.Thread(target=append)
    writer.start()
    assert logpipe("ship", "--once", str(log), "--archive", archive).code == 0
    stop.set()
    writer.join()
    total = log.read_bytes().count(b"\n")
    assert logpipe("ship", "--once", str(log), "--archive", archive).code == 0
    assert archived_seqs(tmp_path / "a") == list(range(total))
