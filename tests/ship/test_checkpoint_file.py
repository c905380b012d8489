"""A damaged checkpoints.json stops the agent with one line naming the file and what is wrong.

Starting from zero instead would re-read every file; refusing lets a person decide (fix the file,
or move it away: the archive's ledger then drops what it already holds, see test_ledger_lock).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from shiphelp import Run, archived_seqs, record, write_records

Logpipe = Callable[..., Run]


def _valid(tmp_path: Path, logpipe: Logpipe) -> tuple[Path, Path, Path, dict[str, object]]:
    """A log shipped once (100 records), its archive, and its checkpoint file as parsed JSON."""
    log, archive = tmp_path / "app.log", tmp_path / "a"
    write_records(log, (record(i) for i in range(100)))
    assert logpipe("ship", "--once", str(log), "--archive", str(archive)).code == 0
    state = archive / "state" / "checkpoints.json"
    doc = json.loads(state.read_bytes())
    write_records(log, (record(i) for i in range(100, 120)))
    return log, archive, state, doc


def _first_entry(doc: dict[str, object]) -> dict[str, object]:
    sources = doc["sources"]
    assert isinstance(sources, dict) and len(sources) == 1
    entry = next(iter(sources.values()))
    assert isinstance(entry, dict)
    return entry


def _edit(doc: dict[str, object], change: Callable[[dict[str, object]], object]) -> bytes:
    change(doc)
    return json.dumps(doc).encode()


def _set(field: str, value: object) -> Callable[[dict[str, object]], object]:
    return lambda doc: _first_entry(doc).__setitem__(field, value)


DAMAGE: dict[str, tuple[Callable[[bytes, dict[str, object]], bytes], str]] = {
    "empty": (lambda raw, doc: b"", "not valid JSON"),
    "truncated": (lambda raw, doc: raw[: len(raw) // 2], "not valid JSON"),
    "not an object": (lambda raw, doc: b"[1, 2]", "must be a JSON object"),
    "no version": (lambda raw, doc: _edit(doc, lambda d: d.pop("version")), "version"),
    "version 2": (lambda raw, doc: _edit(doc, lambda d: d.__setitem__("version", 2)), "version 2"),
    "sources a list": (lambda raw, doc: _edit(doc, lambda d: d.__setitem__("sources", [])), "sources"),
    "entry a number": (lambda raw, doc: _edit(doc, lambda d: d.__setitem__("sources", {"x": 1})), "sources.x"),
    "offset a string": (lambda raw, doc: _edit(doc, _set("offset", "12")), "offset"),
    "offset negative": (lambda raw, doc: _edit(doc, _set("offset", -5)), "offset"),
    "offset a bool": (lambda raw, doc: _edit(doc, _set("offset", True)), "offset"),
    "offset missing": (lambda raw, doc: _edit(doc, lambda d: _first_entry(d).pop("offset")), "offset"),
    "path a number": (lambda raw, doc: _edit(doc, _set("path", 3)), "path"),
    "unknown field": (lambda raw, doc: _edit(doc, _set("colour", "red")), "colour"),
}


class TestDamagedCheckpointFile:
    @pytest.mark.parametrize("damage", list(DAMAGE))
    def test_refuses_with_one_line(self, tmp_path: Path, logpipe: Logpipe, damage: str) -> None:
        """Each kind of damage: exit 1, one line naming the file and the fault, nothing shipped,
        the file left as it was for a person to look at."""
        log, archive, state, doc = _valid(tmp_path, logpipe)
        spoil, fault = DAMAGE[damage]
        bad = spoil(state.read_bytes(), doc)
        state.write_bytes(bad)
        res = logpipe("ship", "--once", str(log), "--archive", str(archive))
        assert res.code == 1, res.err
        lines = res.err.strip().splitlines()
        assert len(lines) == 1, res.err
        assert lines[0].startswith(f"error: checkpoint file {state}") and fault in lines[0], lines[0]
        assert "Traceback" not in res.err and "Error:" not in res.err
        assert state.read_bytes() == bad
        assert archived_seqs(archive) == list(range(100))

    def test_moved_away_reships_nothing_twice(self, tmp_path: Path, logpipe: Logpipe) -> None:
        """What the message advises: with the damaged file moved away the run re-reads the log,
        and the archive (its ledger) still holds every record exactly once."""
        log, archive, state, _ = _valid(tmp_path, logpipe)
        state.write_bytes(b"{")
        res = logpipe("ship", "--once", str(log), "--archive", str(archive))
        assert res.code == 1 and "move it away" in res.err
        state.rename(state.with_name("checkpoints.json.bad"))
        res = logpipe("ship", "--once", str(log), "--archive", str(archive))
        assert res.code == 0, res.err
        assert archived_seqs(archive) == list(range(120))
