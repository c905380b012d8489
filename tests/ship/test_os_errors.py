"""Operating-system errors reach the user as one plain sentence naming the path, on every command.

Run as the real CLI in a subprocess. Permission cases need a process that permissions apply to:
as root the command runs without the capabilities that bypass file permissions (setpriv), as
any other user it runs as is. Disk-full and read-only file systems use a small tmpfs when the
tests run as root (they can mount one); the mapping of every errno is also tested directly.
"""

from __future__ import annotations

import errno
import os
import random
import subprocess
from pathlib import Path

import pytest
from shiphelp import LOGPIPE, Run, archived_seqs, record, write_records

from tests.support.disk import tmpfs

IS_ROOT = os.geteuid() == 0
# Root keeps its uid but loses the two capabilities that let it read and write any file.
WITHOUT_DAC = [
    "setpriv",
    "--bounding-set=-dac_override,-dac_read_search",
    "--inh-caps=-dac_override,-dac_read_search",
    "--",
]


def run(*args: str, permissions_apply: bool = False, timeout: float = 120) -> Run:
    prefix = WITHOUT_DAC if permissions_apply and IS_ROOT else []
    proc = subprocess.run(
        [*prefix, *LOGPIPE, *args], capture_output=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"}
    )
    return Run(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def assert_one_plain_line(res: Run, *expected: str) -> str:
    """Exit 1, and stderr's last line is `error: …` holding every `expected` and no Python names."""
    assert res.code == 1, (res.code, res.err)
    line = res.err.strip().splitlines()[-1]
    assert line.startswith("error: "), res.err
    for text in expected:
        assert text in line, (text, line)
    for raw in ("Errno", "Error:", "Traceback", "--debug", "errno"):
        assert raw not in res.err, res.err
    return line


@pytest.fixture
def shipped(tmp_path: Path) -> tuple[Path, Path]:
    """A log of 200 records and an archive that holds them."""
    log, archive = tmp_path / "app.log", tmp_path / "a"
    write_records(log, (record(i) for i in range(200)))
    assert run("ship", "--once", str(log), "--archive", str(archive)).code == 0
    return log, archive


class TestPaths:
    def test_archive_under_a_file(self, tmp_path: Path) -> None:
        """`ship --archive FILE/x`: not a directory, naming the path."""
        log = tmp_path / "app.log"
        write_records(log, [record(0)])
        res = run("ship", "--once", str(log), "--archive", str(log / "x"))
        assert_one_plain_line(res, str(log / "x"), "not a directory")

    def test_query_archive_is_a_file(self, shipped: tuple[Path, Path]) -> None:
        """`query` and `sql` with `--archive` naming a file say it is not a directory."""
        log, _ = shipped
        for args in (["query", "errors"], ["sql", "SELECT 1"]):
            res = run(*args, "--archive", str(log))
            assert_one_plain_line(res, str(log), "not a directory")

    def test_unreadable_log_file(self, tmp_path: Path) -> None:
        """An unreadable log is an error naming it, not a silent `0 files` run."""
        log = tmp_path / "app.log"
        write_records(log, [record(0)])
        log.chmod(0)
        res = run("ship", "--once", str(log), "--archive", str(tmp_path / "a"), permissions_apply=True)
        assert_one_plain_line(res, f"cannot read {log}", "permission denied")

    def test_read_only_archive(self, shipped: tuple[Path, Path]) -> None:
        """An archive folder nobody may write: permission denied, naming what could not be written."""
        log, archive = shipped
        write_records(log, (record(i) for i in range(200, 210)))
        modes = {p: p.stat().st_mode for p in [archive, *archive.rglob("*")]}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            res = run("ship", "--once", str(log), "--archive", str(archive), permissions_apply=True)
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        assert_one_plain_line(res, str(archive), "permission denied")
        assert archived_seqs(archive) == list(range(200))

    def test_state_folder_nobody_may_enter(self, shipped: tuple[Path, Path]) -> None:
        """A state folder without permissions: the checkpoint file cannot be opened, said so."""
        log, archive = shipped
        state = archive / "state"
        state.chmod(0)
        try:
            res = run("ship", "--once", str(log), "--archive", str(archive), permissions_apply=True)
        finally:
            state.chmod(0o755)
        assert_one_plain_line(res, f"cannot open {state / 'checkpoints.json'}", "permission denied")

    def test_export_to_a_folder_nobody_may_write(self, shipped: tuple[Path, Path], tmp_path: Path) -> None:
        """`export --out` into a read-only folder: cannot write, naming the folder."""
        _, archive = shipped
        out = tmp_path / "out"
        out.mkdir(mode=0o555)
        res = run(
            "export",
            "--since",
            "3000d",
            "--archive",
            str(archive),
            "--out",
            str(out / "x.parquet"),
            permissions_apply=True,
        )
        assert_one_plain_line(res, f"cannot write {out}", "permission denied")
        assert list(out.iterdir()) == []


@pytest.mark.skipif(not IS_ROOT, reason="mounting a tmpfs needs root; TestMapping covers the sentences")
class TestFileSystems:
    def test_disk_full_loses_nothing(self, tmp_path: Path) -> None:
        """A full disk stops `ship` with one line; after space is freed a re-run ships every record once."""
        log = tmp_path / "app.log"
        rng = random.Random(12)
        # Random messages do not compress: ~3 MB of Parquet into a 1 MiB file system.
        records = [
            record(i, noise="".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=300))) for i in range(10_000)
        ]
        write_records(log, records)
        with tmpfs(tmp_path / "disk", "1m") as disk:
            archive = disk / "a"
            res = run("ship", "--once", str(log), "--archive", str(archive))
            assert_one_plain_line(res, str(archive), "no space left on device")
            subprocess.run(["mount", "-o", "remount,size=256m", str(disk)], check=True)
            res = run("ship", "--once", str(log), "--archive", str(archive))
            assert res.code == 0, res.err
            assert archived_seqs(archive) == list(range(10_000))

    def test_read_only_file_system(self, tmp_path: Path) -> None:
        """An archive on a file system mounted read-only: one line saying so, naming the path."""
        log = tmp_path / "app.log"
        write_records(log, (record(i) for i in range(100)))
        with tmpfs(tmp_path / "disk", "16m") as disk:
            archive = disk / "a"
            assert run("ship", "--once", str(log), "--archive", str(archive)).code == 0
            write_records(log, (record(i) for i in range(100, 150)))
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
            res = run("ship", "--once", str(log), "--archive", str(archive))
            assert_one_plain_line(res, str(archive), "read-only file system")
            subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
            assert run("ship", "--once", str(log), "--archive", str(archive)).code == 0
            assert archived_seqs(archive) == list(range(150))


class TestMapping:
    """The sentence for each errno, from `logpipe.cli.app.os_error_sentence` (the CLI edge)."""

    @pytest.mark.parametrize(
        ("code", "reason"),
        [
            (errno.EACCES, "permission denied"),
            (errno.EPERM, "operation not permitted"),
            (errno.EROFS, "read-only file system"),
            (errno.ENOSPC, "no space left on device"),
            (errno.EDQUOT, "disk quota exceeded"),
            (errno.ENOTDIR, "not a directory"),
            (errno.EISDIR, "is a directory"),
            (errno.ENOENT, "no such file or directory"),
            (errno.EMFILE, "too many open files"),
        ],
    )
    def test_errno_becomes_a_sentence(self, code: int, reason: str) -> None:
        """Each errno reads as `cannot … PATH: reason`, lower case, no Python type or errno number."""
        from logpipe.cli.app import os_error_sentence

        sentence = os_error_sentence(OSError(code, os.strerror(code), "/x/y"))
        assert sentence.endswith(f"/x/y: {reason}") and sentence.startswith("cannot ")
        assert "Errno" not in sentence and "Error" not in sentence

    def test_pyarrow_message_names_the_path(self) -> None:
        """pyarrow's OSError carries the path in its text, not in `filename`: it is found there."""
        from logpipe.cli.app import os_error_sentence

        exc = PermissionError(
            errno.EACCES, "Failed to open local file '/out/.tmp-1-x.parquet'. Detail: [errno 13] Permission denied"
        )
        assert os_error_sentence(exc) == "cannot write /out/.tmp-1-x.parquet: permission denied"

    def test_no_path_still_one_sentence(self) -> None:
        """An OSError without a path still reads as one sentence."""
        from logpipe.cli.app import os_error_sentence

        assert os_error_sentence(OSError(errno.ENOSPC, "No space left on device")) == ("no space left on device")


def test_debug_keeps_the_traceback(tmp_path: Path) -> None:
    """With --debug the same OS error comes with its traceback."""
    log = tmp_path / "app.log"
    write_records(log, [record(0)])
    res = run("--debug", "ship", "--once", str(log), "--archive", str(log / "x"))
    assert res.code != 0 and "Traceback" in res.err and "NotADirectoryError" in res.err
