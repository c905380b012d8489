"""logpipe/checkpoints.py on its own: parsing, the store's rules, and the atomic write (no agent).

The expected values are computed here from the inputs (JSON written by hand, the offsets the
test passes), never read back from the code under test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from logpipe.checkpoints import (
    FILENAME,
    VERSION,
    Checkpoint,
    CheckpointError,
    CheckpointStore,
    parse_checkpoints,
    write_atomic,
)


def entry(**over: Any) -> dict[str, Any]:
    """A checkpoint entry as the file holds it."""
    return {
        "offset": 120,
        "path": "/var/log/app.log",
        "dev": 64,
        "ino": 9,
        "updated": 1.5,
        "fingerprint": "12:ab",
        "created": 1.0,
        **over,
    }


def doc(**sources: dict[str, Any]) -> dict[str, Any]:
    return {"version": VERSION, "sources": sources}


class TestParse:
    def test_every_field_is_read_as_written(self) -> None:
        parsed = parse_checkpoints(doc(a=entry(), b=entry(offset=0, path="/b")))
        assert parsed == {
            "a": Checkpoint(120, "/var/log/app.log", 64, 9, 1.5, "12:ab", 1.0),
            "b": Checkpoint(0, "/b", 64, 9, 1.5, "12:ab", 1.0),
        }

    def test_fields_added_later_default_for_old_files(self) -> None:
        """A file of an older logpipe (offset and path only) still loads."""
        assert parse_checkpoints(doc(a={"offset": 7, "path": "/x"})) == {"a": Checkpoint(7, "/x")}

    def test_an_integer_is_a_number_for_float_fields(self) -> None:
        assert parse_checkpoints(doc(a=entry(updated=3)))["a"].updated == 3

    @pytest.mark.parametrize(
        ("document", "says"),
        [
            ([], "must be a JSON object, not an array"),
            ({"sources": {}}, "has version None"),
            ({"version": VERSION + 1, "sources": {}}, f"has version {VERSION + 1}"),
            ({"version": VERSION, "sources": []}, "has `sources` an array"),
            (doc(a="x"), "has sources.a a string"),
            (doc(a=entry(offset=-1)), "has sources.a.offset -1"),
            (doc(a=entry(offset=True)), "has sources.a.offset a boolean (true)"),
            (doc(a=entry(offset="12")), 'has sources.a.offset a string ("12")'),
            (doc(a=entry(offset=1.5)), "has sources.a.offset a number (1.5)"),
            (doc(a=entry(path=None)), "has sources.a.path null"),
            (doc(a=entry(extra=1)), "has an unknown field sources.a.extra"),
            (doc(a={"path": "/x"}), "lacks sources.a.offset"),
        ],
    )
    def test_damage_is_named_with_where_it_is(self, document: object, says: str) -> None:
        with pytest.raises(ValueError) as raised:
            parse_checkpoints(document)
        assert says in str(raised.value)


class TestStore:
    def test_no_file_is_no_positions(self, tmp_path: Path) -> None:
        store = CheckpointStore(tmp_path / "state")
        assert store.items() == [] and store.get("a") is None and store.mtime() == 0.0

    def test_commit_then_load_gives_the_same_positions(self, tmp_path: Path) -> None:
        store = CheckpointStore(tmp_path)
        store.identify("a", "5:abc", "/a.log", 1, 2)
        store.advance("a", 100, "/a.log", 1, 2)
        store.advance("b", 40, "/b.log", 1, 3)
        store.commit()
        on_disk = json.loads((tmp_path / FILENAME).read_bytes())
        assert on_disk["version"] == VERSION
        assert {sid: (e["offset"], e["path"], e["ino"]) for sid, e in on_disk["sources"].items()} == {
            "a": (100, "/a.log", 2),
            "b": (40, "/b.log", 3),
        }
        assert on_disk["sources"]["a"]["fingerprint"] == "5:abc"  # identified before its first advance
        assert on_disk["sources"]["b"]["fingerprint"] == ""
        again = CheckpointStore(tmp_path)
        assert again.items() == store.items()

    def test_positions_only_move_forward(self, tmp_path: Path) -> None:
        store = CheckpointStore(tmp_path)
        seen: list[int] = []
        for offset in (10, 50, 30, 50, 49, 70):
            store.advance("a", offset, "/a", 1, 1)
            seen.append(store.get("a").offset)  # type: ignore[union-attr]
        assert seen == [10, 50, 50, 50, 50, 70]

    def test_rewind_lowers_and_never_raises(self, tmp_path: Path) -> None:
        store = CheckpointStore(tmp_path)
        store.advance("a", 100, "/a", 1, 1)
        store.rewind("a", 150)
        assert store.get("a").offset == 100  # type: ignore[union-attr]
        store.rewind("a", 20)
        assert store.get("a").offset == 20  # type: ignore[union-attr]
        store.advance("a", 60, "/a", 1, 1)  # forward from the rewound position
        assert store.get("a").offset == 60  # type: ignore[union-attr]
        store.rewind("unknown", 5)
        assert store.get("unknown") is None

    def test_identify_keeps_created_and_moves_the_file(self, tmp_path: Path) -> None:
        store = CheckpointStore(tmp_path)
        store.advance("a", 10, "/a", 1, 1)
        first = store.get("a")
        assert first is not None
        store.identify("a", "9:ff", "/a.1", 1, 7)  # renamed and re-identified
        moved = store.get("a")
        assert moved is not None
        assert (moved.path, moved.ino, moved.fingerprint, moved.offset) == ("/a.1", 7, "9:ff", 10)
        assert moved.created == first.created
        store.advance("a", 20, "/a.1", 1, 7)
        assert store.get("a").fingerprint == "9:ff"  # type: ignore[union-attr]

    def test_forget_drops_only_old_sources_not_kept(self, tmp_path: Path) -> None:
        store = CheckpointStore(tmp_path)
        for sid in ("old", "kept", "new"):
            store.advance(sid, 1, f"/{sid}", 1, 1)
        for sid in ("old", "kept"):
            store.get(sid).updated -= 1000  # type: ignore[union-attr]
        store.forget_older_than(500, keep={"kept"})
        assert sorted(sid for sid, _ in store.items()) == ["kept", "new"]

    @pytest.mark.parametrize(
        ("content", "says"),
        [(b"{not json", "is not valid JSON"), (b'{"version": 99, "sources": {}}', "has version 99")],
    )
    def test_a_damaged_file_refuses_to_start(self, tmp_path: Path, content: bytes, says: str) -> None:
        (tmp_path / FILENAME).write_bytes(content)
        with pytest.raises(CheckpointError) as raised:
            CheckpointStore(tmp_path)
        assert str(tmp_path / FILENAME) in str(raised.value) and says in str(raised.value)


class TestWriteAtomic:
    def test_replaces_the_content_and_leaves_no_temporary_file(self, tmp_path: Path) -> None:
        target = tmp_path / "f.json"
        target.write_bytes(b"old")
        data = os.urandom(1 << 20)
        write_atomic(target, data)
        assert target.read_bytes() == data
        assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]

    def test_a_failed_write_leaves_the_old_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A disk that fills up mid-write (os.write short, then 0): the old file stays whole."""
        target = tmp_path / "f.json"
        target.write_bytes(b"old content")
        real_write = os.write
        calls: list[int] = []

        def short_write(fd: int, data: Any) -> int:
            calls.append(len(data))
            return real_write(fd, bytes(data[:10])) if len(calls) == 1 else 0

        monkeypatch.setattr(os, "write", short_write)
        with pytest.raises(OSError) as raised:
            write_atomic(target, b"x" * 100)
        monkeypatch.undo()
        assert calls[:2] == [100, 90], "the rest is written after a short write"
        assert raised.value.filename == str(tmp_path / ".tmp-f.json")
        assert target.read_bytes() == b"old content"
