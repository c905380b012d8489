"""The Rust boundary: which buffers are borrowed or copied, what is checked before the GIL is
released, and that bytes which are not UTF-8 become rejects instead of reaching unchecked code."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from native_support import READ_TIME_US, call_normalise, column, cuts_of, int64s, normaliser

from logpipe import _native
from logpipe.enrich.context import RequestContext
from logpipe.parse.framing import Framed
from logpipe.parse.normalise import BatchContext, normalise

LINES = 100_000


def _batch(letter: str) -> bytes:
    """LINES records whose messages are one letter repeated; every batch has the same length."""
    return b"".join(b'{"message":"%s","n":%d}\n' % (letter.encode() * 40, i % 10) for i in range(LINES))


def _frame(data: Any) -> Callable[[], list[str]]:
    """Frame `data` now; the messages later (after the other thread stopped)."""
    lines, cuts, _, rejects = _native.frame(data, 0, 1 << 20, 64)
    assert rejects == []

    def messages() -> list[str]:
        raw = bytes(lines)
        return [json.loads(raw[a:b])["message"] for a, b in itertools.pairwise(np.frombuffer(cuts, np.int64).tolist())]

    return messages


def _normalise(data: Any) -> Callable[[], list[str]]:
    # Each line keeps its newline (whitespace after the object): the cuts are the same for every
    # batch of _batch, so they are taken from one the other thread does not change.
    cuts = cuts_of(_batch("x").splitlines(keepends=True))
    out = call_normalise(data, cuts, list(range(LINES)))
    assert out["rejects"] == []
    return lambda: list(column(out, "message"))


ENTRIES: dict[str, Callable[[Any], Callable[[], list[str]]]] = {"frame": _frame, "normalise": _normalise}


class TestWritableBuffers:
    """A writable buffer is copied before the GIL is released: another thread changing it during
    the call changes nothing in the result (borrowed, rows read before and after a change would
    disagree, and a change could split a character the check had passed)."""

    @pytest.mark.parametrize("entry", sorted(ENTRIES))
    @pytest.mark.parametrize("kind", ["bytearray", "memoryview"])
    def test_a_buffer_changed_during_the_call_gives_one_consistent_result(self, entry: str, kind: str) -> None:
        first, second = _batch("a"), _batch("b")
        target = bytearray(first)
        passed: Any = target if kind == "bytearray" else memoryview(target)
        assert not memoryview(passed).readonly
        flipping, done = threading.Event(), threading.Event()
        flips = 0

        def flip() -> None:
            nonlocal flips
            while not done.is_set():
                target[:] = second if flips % 2 == 0 else first  # same length: never a resize
                flips += 1
                flipping.set()

        flipper = threading.Thread(target=flip)
        flipper.start()
        overlapped = 0
        try:
            assert flipping.wait(10)
            # On a busy machine the other thread may not get to run during one short call: call
            # again until it did (every result must be consistent, overlapped or not).
            for _ in range(50):
                before = flips
                messages = ENTRIES[entry](passed)
                overlapped += flips > before
                got = messages()
                assert len(got) == LINES
                assert len(set(got)) == 1, "rows from different moments of the buffer"
                assert got[0] in ("a" * 40, "b" * 40)
                if overlapped >= 3:
                    break
        finally:
            done.set()
            flipper.join()
        assert overlapped >= 3  # the other thread changed the buffer while the native code ran

    def test_read_only_and_writable_buffers_give_the_same_result(self) -> None:
        data = _batch("c")
        passed = (data, memoryview(data), bytearray(data), np.frombuffer(data, np.int8))
        results = [_frame(d)() for d in passed]
        assert all(r == ["c" * 40] * LINES for r in results)


class TestCheckedBeforeRelease:
    """Arguments are checked while the GIL is held; a mismatch is a ValueError, never a panic."""

    def test_a_buffer_that_is_not_contiguous_is_refused(self) -> None:
        strided = memoryview(b'{"a":1}\n' * 4)[::2]
        with pytest.raises(ValueError, match="contiguous"):
            _native.frame(strided, 0, 100, 10)
        with pytest.raises(ValueError, match="contiguous"):
            call_normalise(strided, [0, 1], [0])

    @pytest.mark.parametrize(
        ("cuts", "offsets"),
        [
            ([0, 9], [0]),  # past the end of the 8 data bytes
            ([0, 5, 3, 8], [0, 5, 3]),  # going back
            ([-1, 8], [0]),  # before the start
            ([0, 4, 8], [0]),  # one cut too many for the offsets
            ([], []),  # no cuts at all: not even the first
        ],
    )
    def test_line_cuts_must_fit_the_data(self, cuts: list[int], offsets: list[int]) -> None:
        with pytest.raises(ValueError, match="line offsets do not match the data"):
            call_normalise(b'{"a":1}\n', cuts, offsets)

    def test_offset_buffers_must_hold_whole_int64s(self) -> None:
        n = normaliser()
        with pytest.raises(ValueError, match="line_offsets must be int64s"):
            n.normalise(_native.Context(10, 10), b"{}", int64s([0, 2]) + b"\0", int64s([0]), None, "s", "k", 0, -1)

    def test_no_lines_is_an_empty_result(self) -> None:
        out = call_normalise(b"", [0], [])
        assert (column(out, "message"), out["rejects"]) == ([], [])


class TestUtf8AtTheEntry:
    """normalise checks each line itself: bytes that are not UTF-8 are a reject with the byte
    where the text stops, never text to the code after the check."""

    BAD = (b'{"message":"caf\xe9"}', b'{"message":"\xed\xa0\x80"}', b"\xc0\xaf", b'{"m":"ok\xf0\x9f\x98"}')

    @pytest.mark.parametrize("bad", BAD)
    def test_a_line_that_is_not_utf8_is_rejected_with_where_it_breaks(self, bad: bytes) -> None:
        lines = [b'{"message":"before"}', bad, b'{"message":"after"}']
        out = call_normalise(b"".join(lines), cuts_of(lines), [0, 100, 200])
        try:
            bad.decode("utf-8")
            pytest.fail("the example is UTF-8")
        except UnicodeDecodeError as exc:
            where = exc.start
        assert out["rejects"] == [(1, "invalid_utf8", f"invalid UTF-8 at byte {where} of the line")]
        assert column(out, "message") == ["before", "after"]
        assert column(out, "offset") == [0, 200]

    def test_a_cut_inside_a_character_makes_both_halves_rejects(self) -> None:
        data = '{"message":"é"}'.encode()
        split = data.index(b"\xc3") + 1
        out = call_normalise(data, [0, split, len(data)], [0, split])
        assert [(i, reason) for i, reason, _ in out["rejects"]] == [(0, "invalid_utf8"), (1, "invalid_utf8")]

    def test_through_the_python_stage_the_dead_letter_keeps_the_raw_bytes(self) -> None:
        lines = [b'{"message":"ok"}', b'{"message":"\xff"}']
        cuts = cuts_of(lines)
        # Arrow does not check the text of an array built from buffers: the normaliser must.
        array = pa.Array.from_buffers(
            pa.large_string(), 2, [None, pa.py_buffer(int64s(cuts)), pa.py_buffer(b"".join(lines))]
        )
        framed = Framed(array, pa.array([10, 40], pa.int64()))
        records, rejects, _ = normalise(
            framed, normaliser(), BatchContext("/app.log", "k", READ_TIME_US), RequestContext()
        )
        assert records.column("message").to_pylist() == ["ok"]
        assert [(r.offset, r.reason, r.raw) for r in rejects] == [(40, "invalid_utf8", lines[1])]


def test_native_buffers_are_read_only() -> None:
    """What the native side hands to Arrow cannot be written through, so Arrow's arrays over it
    are immutable as Arrow assumes."""
    data, _, _, _ = _native.frame(b'{"a":1}\n', 0, 100, 10)
    view = memoryview(data)
    assert view.readonly
    with pytest.raises(TypeError):
        view[0] = 0


class TestTextBloom:
    """text_bloom holds only the rows it reads: a writable Arrow buffer (fresh from a kernel)
    copies just those, and the filter is the same as from read-only memory."""

    def test_a_slice_of_writable_buffers_gives_the_filter_of_its_rows(self) -> None:
        array = pa.array([f"value {i} of the column" for i in range(100)], pa.string())
        _, offsets, data = array.buffers()
        assert not memoryview(data).readonly
        part = array.slice(30, 20)

        def read_only(b: pa.Buffer) -> pa.Buffer:
            return pa.py_buffer(b.to_pybytes())

        writable = _native.text_bloom([(offsets, data, part.offset, len(part), False)])
        copied = _native.text_bloom([(read_only(offsets), read_only(data), part.offset, len(part), False)])
        fresh = pa.array(part.to_pylist(), pa.string())
        alone = _native.text_bloom([(fresh.buffers()[1], fresh.buffers()[2], 0, len(fresh), False)])
        assert writable == copied == alone

    def test_rows_past_the_offsets_are_refused(self) -> None:
        array = pa.array(["abc", "defg"], pa.string())
        _, offsets, data = array.buffers()
        for first, rows in ((1, 2), (0, 2**64 - 1), (2**63, 1)):  # the last two overflow unless checked
            with pytest.raises(ValueError, match="offsets too short"):
                _native.text_bloom([(offsets, data, first, rows, False)])
        short = pa.py_buffer(data.to_pybytes()[:5])
        with pytest.raises(ValueError, match="offsets past the data"):
            _native.text_bloom([(offsets, short, 0, 2, False)])
