"""Request context: user_id/session_id filled across a request, within and across batches, bounded."""

from __future__ import annotations

from typing import Any

from parse_support import lines, rows, transformer

from logpipe.enrich.context import ContextLimits
from logpipe.model import RawBatch
from logpipe.pipeline import Transformer


def _rec(msg: str, rid: str | None, **ctx: str) -> dict[str, Any]:
    rec: dict[str, Any] = {"message": msg, "timestamp": 0, **ctx}
    if rid is not None:
        rec["request_id"] = rid
    return rec


class Feeder:
    """Feeds consecutive batches of one file to one Transformer, as the source would."""

    def __init__(self, t: Transformer) -> None:
        self.t, self.pos, self.now = t, 0, 1_700_000_000_000_000

    def __call__(self, *recs: dict[str, Any]) -> dict[str, tuple[str | None, str | None]]:
        data = lines(*recs)
        raw = RawBatch(
            "f" * 32,
            "/app.log",
            self.pos,
            self.pos + len(data),
            data,
            self.now,
            "python-json-logger",
        )
        self.pos += len(data)
        self.now += 1_000_000
        return {r["message"]: (r["user_id"], r["session_id"]) for r in rows(self.t(raw))}


class TestWithinBatch:
    """A window over request_id fills the request's lines in one batch."""

    def test_later_and_earlier_lines_filled(self) -> None:
        """Lines after AND before the context line get its user/session; others are untouched."""
        got = Feeder(transformer())(
            _rec("before", "r1"),
            _rec("ctx", "r1", user_id="u1", session_id="s1"),
            _rec("after", "r1"),
            _rec("other", "r2"),
            _rec("no-rid", None),
        )
        assert got == {
            "before": ("u1", "s1"),
            "ctx": ("u1", "s1"),
            "after": ("u1", "s1"),
            "other": (None, None),
            "no-rid": (None, None),
        }

    def test_first_context_wins_and_own_values_kept(self) -> None:
        """A line's own user_id is never overwritten; gaps get the request's first named user."""
        got = Feeder(transformer())(
            _rec("a", "r1", user_id="first"),
            _rec("b", "r1", user_id="second", session_id="s"),
            _rec("c", "r1"),
        )
        assert got == {"a": ("first", "s"), "b": ("second", "s"), "c": ("first", "s")}

    def test_rows_without_request_id_never_filled(self) -> None:
        """Lines without a request_id stay empty even when context exists for others."""
        got = Feeder(transformer())(_rec("ctx", "r1", user_id="u1"), _rec("x", None), _rec("y", None))
        assert got["x"] == got["y"] == (None, None)


class TestAcrossBatches:
    """The bounded map carries a request's context into later batches."""

    def test_later_batch_filled(self) -> None:
        """A later batch's lines of a known request get its user and session."""
        feed = Feeder(transformer())
        feed(_rec("ctx", "r1", user_id="u1", session_id="s1"), _rec("r2-ctx", "r2", user_id="u2"))
        got = feed(_rec("later", "r1"), _rec("later2", "r2"), _rec("unknown", "r3"), _rec("none", None))
        assert got == {
            "later": ("u1", "s1"),
            "later2": ("u2", None),
            "unknown": (None, None),
            "none": (None, None),
        }

    def test_context_from_filled_line(self) -> None:
        """A request whose first batch got its context by the window is remembered too."""
        feed = Feeder(transformer())
        feed(_rec("a", "r1"), _rec("b", "r1", session_id="s1"))
        assert feed(_rec("c", "r1")) == {"c": (None, "s1")}

    def test_first_batch_context_wins(self) -> None:
        """A different user named in a later batch does not replace the remembered one for gaps."""
        feed = Feeder(transformer())
        feed(_rec("a", "r1", user_id="u1"))
        got = feed(_rec("b", "r1", user_id="u9"), _rec("c", "r1"))
        assert got == {"b": ("u9", None), "c": ("u1", None)}


class TestBound:
    """The map never grows past max_entries."""

    def test_eviction_bound(self) -> None:
        """After many requests the map holds at most max_entries; recent requests are still filled."""
        t = transformer(limits=ContextLimits(max_entries=40, max_age_s=3600))
        feed = Feeder(t)
        for batch in range(10):
            feed(*(_rec(f"{batch}-{i}", f"r{batch}-{i}", user_id=f"u{batch}-{i}") for i in range(15)))
            assert t.context.size() <= 40
        assert feed(_rec("recent", "r9-3"))["recent"] == ("u9-3", None)
        assert feed(_rec("old", "r0-3"))["old"] == (None, None)

    def test_age_eviction(self) -> None:
        """Entries older than max_age_s go when the map is trimmed."""
        t = transformer(limits=ContextLimits(max_entries=5, max_age_s=1))
        feed = Feeder(t)
        feed(*(_rec(f"a{i}", f"a{i}", user_id="u") for i in range(3)))
        feed.now += 10_000_000
        feed(*(_rec(f"b{i}", f"b{i}", user_id="u") for i in range(4)))
        # Over max_entries: the old ones go by age, then the map is trimmed to 3/4 of the bound.
        assert t.context.size() == 5 * 3 // 4
        assert feed(_rec("old", "a1"))["old"] == (None, None)
