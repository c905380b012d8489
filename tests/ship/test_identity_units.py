"""File identity (logpipe/sources/files.py) on its own: the first-line id, the content fingerprint,
recognising a checkpoint's file, rotated siblings and line starts (no agent).

Hashes are computed here with hashlib from the bytes the test wrote, as the module docstring
defines them: the id is sha256 of the first line (newline included, at most FINGERPRINT_BYTES),
the fingerprint `<length>:<sha256 of the first length bytes>` (at most PREFIX_BYTES), 32 hex digits.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from logpipe.checkpoints import Checkpoint, CheckpointStore
from logpipe.sources.files import (
    FINGERPRINT_BYTES,
    PREFIX_BYTES,
    content_fingerprint,
    content_matches,
    delivered_to_end,
    fingerprint,
    fingerprint_bytes,
    line_start,
    recognises,
    rotated_siblings,
)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


class TestFirstLineId:
    def test_is_the_hash_of_the_first_line_with_its_newline(self) -> None:
        head = b'{"msg": "first"}\n{"msg": "second"}\n'
        assert fingerprint_bytes(head) == sha(b'{"msg": "first"}\n')

    def test_the_rest_of_the_file_does_not_matter(self) -> None:
        assert fingerprint_bytes(b"same\nA\n") == fingerprint_bytes(b"same\nB\n" * 50)
        assert fingerprint_bytes(b"same\n") != fingerprint_bytes(b"Same\n")

    def test_no_complete_first_line_is_not_known_yet(self) -> None:
        assert fingerprint_bytes(b"") is None
        assert fingerprint_bytes(b"no newline yet") is None
        assert fingerprint_bytes(b"no newline yet", allow_partial=True) == sha(b"no newline yet")
        assert fingerprint_bytes(b"", allow_partial=True) is None

    def test_a_long_first_line_counts_up_to_the_limit(self) -> None:
        line = bytes(random.Random(3).randrange(32, 127) for _ in range(FINGERPRINT_BYTES + 500)) + b"\n"
        assert fingerprint_bytes(line) == sha(line[:FINGERPRINT_BYTES])
        # A newline just past the limit is not looked for.
        at_limit = b"x" * FINGERPRINT_BYTES + b"\n"
        assert fingerprint_bytes(at_limit) == sha(b"x" * FINGERPRINT_BYTES)

    def test_of_a_file(self, tmp_path: Path) -> None:
        path = tmp_path / "app.log"
        path.write_bytes(b"one\ntwo\n")
        assert fingerprint(str(path)) == sha(b"one\n")
        assert fingerprint(str(tmp_path / "missing.log")) is None


class TestContentFingerprint:
    @pytest.mark.parametrize("size", [0, 1, 100, PREFIX_BYTES - 1, PREFIX_BYTES, PREFIX_BYTES + 1, 3 * PREFIX_BYTES])
    def test_is_length_and_hash_of_the_prefix(self, size: int) -> None:
        head = os.urandom(size)
        n = min(size, PREFIX_BYTES)
        assert content_fingerprint(head) == f"{n}:{sha(head[:n])}"

    def test_a_file_that_grew_still_matches(self) -> None:
        start = os.urandom(300)
        grown = start + os.urandom(2000)
        assert content_matches(grown, content_fingerprint(start))
        assert content_matches(start, content_fingerprint(start))

    def test_a_shorter_or_changed_file_does_not(self) -> None:
        start = os.urandom(300)
        fp = content_fingerprint(start)
        assert not content_matches(start[:299], fp)  # truncated
        changed = bytearray(start)
        changed[150] ^= 1
        assert not content_matches(bytes(changed) + os.urandom(10), fp)  # rewritten in place


class TestRecognises:
    def test_by_fingerprint_when_the_checkpoint_has_one(self) -> None:
        head = b'{"a": 1}\n' * 40
        cp = Checkpoint(0, "/x", fingerprint=content_fingerprint(head[:100]))
        assert recognises("any-id", cp, head)
        assert not recognises("any-id", cp, b'{"a": 2}\n' * 40)

    def test_by_first_line_id_for_checkpoints_of_older_versions(self) -> None:
        head = b"first line\nrest\n"
        old = Checkpoint(0, "/x")  # no fingerprint: the id is the first-line hash
        assert recognises(sha(b"first line\n"), old, head)
        assert not recognises(sha(b"other line\n"), old, head)


def test_rotated_siblings_newest_first_without_compressed_ones(tmp_path: Path) -> None:
    names = {
        "app.log": 0,
        "app.log.1": 300,
        "app.log.2": 200,
        "app.log-2026-11-20": 100,
        "app.log.3.gz": 400,
        "other.log": 500,
        "app.lo": 600,
    }
    for name, age in names.items():
        path = tmp_path / name
        path.write_text(name)
        os.utime(path, (1_700_000_000 - age, 1_700_000_000 - age))
    expected = sorted(
        (n for n in names if n.startswith("app.log") and n != "app.log" and not n.endswith(".gz")),
        key=lambda n: names[n],
    )
    assert [Path(p).name for p in rotated_siblings(str(tmp_path / "app.log"))] == expected
    assert rotated_siblings(str(tmp_path / "missing" / "app.log")) == []


@pytest.mark.parametrize("seed", range(5))
def test_line_start_is_the_last_newline_before(tmp_path: Path, seed: int) -> None:
    """Against a plain rfind over the whole file, at every position (lines up to 200 KiB, so
    the 64 KiB steps back are crossed)."""
    rng = random.Random(seed)
    data = b"".join(b"x" * rng.choice([0, 1, 5, 70_000, 200_000]) + b"\n" for _ in range(12))
    path = tmp_path / "app.log"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        positions = sorted(
            {
                0,
                len(data),
                *(rng.randrange(len(data) + 1) for _ in range(300)),
                *(i + d for i, b in enumerate(data) if b == 10 for d in (0, 1)),
            }
        )
        for pos in positions:
            assert line_start(fd, pos) == data.rfind(b"\n", 0, pos) + 1, pos
    finally:
        os.close(fd)


class TestDeliveredToEnd:
    def test_only_a_checkpoint_of_this_file_at_its_end(self, tmp_path: Path) -> None:
        path = tmp_path / "app.log"
        data = b'{"n": 1}\n{"n": 2}\n'
        path.write_bytes(data)
        st = path.stat()
        store = CheckpointStore(tmp_path / "state")
        store.identify("s", content_fingerprint(data), str(path), st.st_dev, st.st_ino)
        store.advance("s", len(data) - 1, str(path), st.st_dev, st.st_ino)
        assert not delivered_to_end(str(path), store)  # one byte short
        store.advance("s", len(data), str(path), st.st_dev, st.st_ino)
        assert delivered_to_end(str(path), store)
        with open(path, "ab") as fh:
            fh.write(b'{"n": 3}\n')
        assert not delivered_to_end(str(path), store)  # it grew

    def test_another_inode_or_content_is_not_this_file(self, tmp_path: Path) -> None:
        path = tmp_path / "app.log"
        data = b"line\n"
        path.write_bytes(data)
        st = path.stat()
        store = CheckpointStore(tmp_path / "state")
        store.identify("s", content_fingerprint(b"other\n"), str(path), st.st_dev, st.st_ino)
        store.advance("s", 100, str(path), st.st_dev, st.st_ino)
        store.identify("t", content_fingerprint(data), str(path), st.st_dev, st.st_ino + 1)
        store.advance("t", 100, str(path), st.st_dev, st.st_ino + 1)
        assert not delivered_to_end(str(path), store)
        assert not delivered_to_end(str(tmp_path / "missing.log"), store)
