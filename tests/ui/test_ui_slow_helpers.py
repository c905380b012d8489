"""The pure pieces behind Slow endpoints and Traffic: the percentile, the buckets, the drill-down terms."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from logpipe.read.buckets import WIDTHS_S, buckets_for, epoch_us, quantile_cont
from logpipe.read.filters import matches, parse_filter
from logpipe.ui.slow import group_filter, quote_value


@pytest.mark.parametrize("seed", range(20))
def test_quantile_cont_is_duckdbs(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 60)
    # Repeated values and whole numbers among them, as durations have.
    values = [float(rng.choice([rng.randint(0, 9), round(rng.uniform(0, 5000), 3)])) for _ in range(n)]
    con = duckdb.connect(":memory:")
    con.execute("CREATE TABLE t (v DOUBLE)")
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in values])
    for p in (0.0, 0.25, 0.5, 0.95, 0.99, 1.0):
        ((expected,),) = con.execute("SELECT quantile_cont(v, ?) FROM t", [p]).fetchall()
        assert quantile_cont(sorted(values), p) == pytest.approx(expected, rel=1e-12, abs=1e-12), (values, p)
    assert quantile_cont([], 0.5) is None


def test_buckets_are_aligned_and_the_smallest_width_that_fits() -> None:
    lo = datetime(2026, 11, 2, 9, 17, 3, 250_000, tzinfo=UTC)
    for span in (
        timedelta(seconds=3),
        timedelta(minutes=7),
        timedelta(hours=5),
        timedelta(days=9),
        timedelta(days=400),
    ):
        for target in (1, 10, 60, 1000):
            b = buckets_for(lo, lo + span, target)
            assert b.first_us % b.width_us == 0 and b.first_us <= epoch_us(lo)
            assert b.first_us + b.count * b.width_us >= epoch_us(lo + span)
            fits = [w for w in WIDTHS_S if _count(lo, span, w) <= target]
            assert b.width_us == (fits[0] if fits else WIDTHS_S[-1]) * 1_000_000
    assert buckets_for(None, lo, 60).count == 0 and buckets_for(lo, lo, 60).count == 0


def _count(lo: datetime, span: timedelta, width_s: int) -> int:
    w = width_s * 1_000_000
    first = epoch_us(lo) // w * w
    return -(-(epoch_us(lo + span) - first) // w)


@pytest.mark.parametrize("value", ["/api/users/{id}", "with space", 'say "hi"', "back\\slash", '"leading', "", "a=b"])
def test_drill_down_terms_select_exactly_the_group(value: str) -> None:
    quoted = quote_value(value)
    flt = parse_filter(f"endpoint={quoted}")
    assert matches(flt, {"endpoint": value})
    assert not matches(flt, {"endpoint": value + "x"})
    both = parse_filter(group_filter("endpoint", "GET", value, None))
    assert matches(both, {"method": "GET", "endpoint": value}) and not matches(
        both, {"method": "POST", "endpoint": value}
    )
    assert matches(parse_filter(group_filter("service", None, None, value)), {"service": value})
