"""Every canned query against an independent plain-Python computation over the same records."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
import qexpected as expected
from qdata import Generated

import logpipe.query as q


def _window(gen: Generated, hours: float = 48) -> tuple:
    return gen.now - timedelta(hours=hours), gen.now


class TestErrors:
    def test_groups_match_plain_python(self, generated: Generated) -> None:
        """Every message key's count, first/last seen, sample and top lists match."""
        since, until = _window(generated)
        got = q.errors(generated.archive, since=since, until=until).to_pylist()
        want = expected.errors(generated.records, since, until)
        assert len(want) >= 4
        assert [r["message_key"] for r in got] == [w["message_key"] for w in want]
        for row, exp in zip(got, want, strict=True):
            assert row["count"] == exp["count"]
            assert row["first_seen"] == exp["first_seen"]
            assert row["last_seen"] == exp["last_seen"]
            assert row["sample_message"] in exp["sample_messages"]
            assert row["top_endpoints"] == exp["top_endpoints"]
            assert row["top_services"] == exp["top_services"]
            assert row["sample_error"] == exp["sample_error"]

    def test_endpoints_come_from_the_requests_access_line(self, generated: Generated) -> None:
        """Error lines carry no endpoint here, only their request's last (access) line does:
        `top_endpoints` still names the endpoints, counted once per error record."""
        since, until = _window(generated)
        got = q.errors(generated.archive, since=since, until=until).to_pylist()
        in_requests = [
            r
            for r in generated.records
            if r["level"] in ("ERROR", "CRITICAL")
            and r["endpoint"] is None
            and r["request_id"] is not None
            and since <= r["ts"] < until
        ]
        assert in_requests, "the generated data should have error lines without an endpoint inside requests"
        assert any(row["top_endpoints"] for row in got if not row["message_key"].startswith(("GET", "POST")))
        assert sum(row["sample_error"] is not None for row in got) >= 3

    def test_window_and_service_filter(self, generated: Generated) -> None:
        """A narrower window and a service filter give the plain-Python subset."""
        since, until = generated.now - timedelta(hours=20), generated.now - timedelta(hours=2)
        got = q.errors(generated.archive, since=since, until=until, service="worker").to_pylist()
        want = expected.errors(generated.records, since, until, service="worker")
        assert want, "the generated data should have worker errors in this window"
        assert [(r["message_key"], r["count"]) for r in got] == [(w["message_key"], w["count"]) for w in want]

    def test_only_error_and_critical(self, generated: Generated) -> None:
        """WARNING and INFO records never count, however their message looks."""
        since, until = _window(generated)
        total = sum(r["count"] for r in q.errors(generated.archive, since=since, until=until).to_pylist())
        assert total == sum(
            1 for r in generated.records if r["level"] in ("ERROR", "CRITICAL") and since <= r["ts"] < until
        )


class TestErrorTimeline:
    @pytest.mark.parametrize("buckets", [1, 7, 40])
    def test_buckets_match_plain_python(self, generated: Generated, buckets: int) -> None:
        """Counts per equal bucket, empty buckets included, edges exact."""
        since, until = _window(generated, 30)
        table = q.error_timeline(generated.archive, since=since, until=until, buckets=buckets)
        assert table.column("bucket").to_pylist() == list(range(buckets))
        assert table.column("count").to_pylist() == expected.error_timeline(generated.records, since, until, buckets)
        starts = table.column("bucket_start").to_pylist()
        assert starts[0] == since and all(a < b for a, b in itertools.pairwise(starts))


class TestJourney:
    def test_user_journey_is_complete(self, generated: Generated) -> None:
        """Lines without user_id (before or after their context line) belong to the user."""
        since, until = _window(generated)
        for user in ("u1", "u5", "u12"):
            got = q.journey(generated.archive, user=user, since=since, until=until)
            want = expected.journey(generated.records, since, until, user=user)
            assert [tuple(r.values()) for r in got.to_pylist()] == want
            assert all(r["user_id"] == user for r in got.to_pylist())

    def test_journey_contains_lines_that_lack_user_id(self, generated: Generated) -> None:
        """The data really has such lines, and the journey picks them up."""
        since, until = _window(generated)
        rows = q.journey(generated.archive, user="u3", since=since, until=until).to_pylist()
        raw_user = {r["event_id"]: r["user_id"] for r in generated.records}
        assert len(rows) > sum(1 for v in raw_user.values() if v == "u3") - 5  # most of u3's own lines
        lacking = [
            r
            for r in generated.records
            if r["user_id"] is None
            and r["request_id"] is not None
            and expected.request_context(generated.records)[r["request_id"]][0] == "u3"
            and since <= r["ts"] < until
        ]
        assert lacking, "generated data must have u3 lines without user_id"
        got_keys = {(r["ts"], r["message"]) for r in rows}
        assert all((r["ts"], r["message"]) in got_keys for r in lacking)

    def test_session_and_request_journeys(self, generated: Generated) -> None:
        """--session and --request follow the same rules."""
        since, until = _window(generated)
        session = next(r["session_id"] for r in generated.records if r["session_id"])
        got = q.journey(generated.archive, session=session, since=since, until=until)
        assert [tuple(r.values()) for r in got.to_pylist()] == expected.journey(
            generated.records, since, until, session=session
        )
        request = next(r["request_id"] for r in generated.records if r["request_id"] and r["user_id"] is None)
        got = q.journey(generated.archive, request=request, since=since, until=until)
        assert [tuple(r.values()) for r in got.to_pylist()] == expected.journey(
            generated.records, since, until, request=request
        )

    def test_needs_exactly_one_subject(self, generated: Generated) -> None:
        from logpipe.errors import UsageError

        with pytest.raises(UsageError, match="exactly one"):
            q.journey(generated.archive)
        with pytest.raises(UsageError, match="exactly one"):
            q.journey(generated.archive, user="u1", session="s")


class TestSlow:
    @pytest.mark.parametrize(("threshold", "by"), [(0.0, "endpoint"), (500.0, "endpoint"), (100.0, "service")])
    def test_percentiles_match_plain_python(self, generated: Generated, threshold: float, by: str) -> None:
        """count, p50/p95/p99 (linear), max, error rate; filtered by p95 and sorted by it."""
        since, until = _window(generated)
        got = q.slow(generated.archive, since=since, until=until, threshold=threshold, by=by).to_pylist()  # type: ignore[arg-type]
        want = expected.slow(generated.records, since, until, threshold, by)
        assert [r["key"] for r in got] == [w["key"] for w in want]
        for row, exp in zip(got, want, strict=True):
            assert row["count"] == exp["count"]
            for col in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "error_rate"):
                assert row[col] == pytest.approx(exp[col]), col

    def test_threshold_text_is_a_duration(self, generated: Generated) -> None:
        since, until = _window(generated)
        as_text = q.slow(generated.archive, since=since, until=until, threshold="0.5s")
        as_ms = q.slow(generated.archive, since=since, until=until, threshold=500)
        assert as_text.equals(as_ms) and as_text.num_rows > 0


class TestPolars:
    def test_polars_frames_equal_arrow_tables(self, generated: Generated) -> None:
        import polars as pl

        since, until = _window(generated)
        frame = q.slow(generated.archive, since=since, until=until, threshold=0, polars=True)
        assert isinstance(frame, pl.DataFrame)
        assert (
            frame.to_arrow().to_pylist() == q.slow(generated.archive, since=since, until=until, threshold=0).to_pylist()
        )
