"""The Drain-style miner (`logpipe.read.patterns`): tokens, grouping, counts, times, trend."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logpipe.read.patterns import WILDCARD, PatternMiner, Window, covers, merge_token, tokenize

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def mined(messages: list[str], **options: object) -> dict[str, int]:
    miner = PatternMiner(**options)  # type: ignore[arg-type]
    for message in messages:
        miner.add(message)
    return {p.template: p.count for p in miner.patterns()}


class TestTokens:
    def test_key_value_keeps_its_colon(self) -> None:
        """`product:77` masks to `product:<*>` (today's message_key makes it `product<*>`)."""
        from logpipe.enrich.templates import message_key

        assert tokenize("product:77 out of stock") == ["product:<*>", "out", "of", "stock"]
        assert message_key("product:77 out of stock") == "product<*> out of stock"  # the baseline's flaw

    @pytest.mark.parametrize(
        "token",
        [
            "42",
            "-1.5",
            "250ms",
            "1.5s",
            "3KB",
            "99%",
            "0x1f",
            "3f2a9c1b",
            "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b",
            "10.0.0.12",
            "10.0.0.12:5432",
            "fe80::1",
            "12:30:01",
            "2026-12-03T10:00:00Z",
            "bob@example.com",
            "https://x.example/a?b=1",
            "ord_8f3a2c",
            "req-42",
        ],
    )
    def test_variable_kinds_are_masked(self, token: str) -> None:
        assert tokenize(f"got {token} now") == ["got", WILDCARD, "now"]

    @pytest.mark.parametrize("token", ["ok", "KeyError:", "can't", "deadbeef", "v2", "GET"])
    def test_constant_words_are_kept(self, token: str) -> None:
        assert tokenize(f"got {token} now") == ["got", token, "now"]

    def test_keys_paths_brackets_and_quotes_keep_their_shape(self) -> None:
        message = "GET /api/users/42, (took 12ms) user_id=7 name='bob smith' reason=\"a b\""
        assert tokenize(message) == [
            "GET",
            "/api/users/<*>,",
            "(took",
            "<*>)",
            "user_id=<*>",
            "name='<*>'",
            'reason="<*>"',
        ]

    def test_merging_keeps_a_shared_key_and_punctuation(self) -> None:
        assert merge_token("status:ok", "status:failed") == "status:<*>"
        assert merge_token("(a)", "(b)") == "(<*>)"
        assert merge_token("x", "y") == WILDCARD
        assert covers("user:<*>", "user:9") and not covers("user:<*>", "host:9")


class TestGrouping:
    def test_product_ids_group_under_one_template(self) -> None:
        assert mined([f"product:{n} out of stock" for n in range(50)]) == {"product:<*> out of stock": 50}

    def test_unmasked_words_are_merged_by_similarity(self) -> None:
        names = ["alice", "bob", "carol", "dave"]
        got = mined([f"cart emptied for customer {n} after checkout" for n in names])
        assert got == {"cart emptied for customer <*> after checkout": 4}

    def test_different_leading_words_stay_apart(self) -> None:
        got = mined(["login ok for 7", "logout ok for 7", "login ok for 8"])
        assert got == {"login ok for <*>": 2, "logout ok for <*>": 1}

    def test_templates_with_a_shared_prefix_but_other_lengths_stay_apart(self) -> None:
        got = mined(["payment failed for order 1", "payment failed for order 2 retrying in 5s"])
        assert got == {"payment failed for order <*>": 1, "payment failed for order <*> retrying in <*>": 1}

    def test_empty_and_missing_messages_count(self) -> None:
        assert mined(["", "", "x"]) == {"": 2, "x": 1}
        miner = PatternMiner()
        miner.add(None)
        assert [(p.template, p.count) for p in miner.patterns()] == [("", 1)]


class TestCounts:
    def test_counts_add_up_to_the_messages_fed(self) -> None:
        rnd = random.Random(3)
        words = ["alpha", "beta", "gamma", "delta", "eps"]
        messages = [
            " ".join(rnd.choice([*words, str(rnd.randint(0, 99))]) for _ in range(rnd.randint(0, 6)))
            for _ in range(3000)
        ]
        miner = PatternMiner()
        for message in messages:
            miner.add(message)
        assert miner.total == 3000
        assert sum(p.count for p in miner.patterns()) == 3000

    def test_equal_templates_are_reported_once(self) -> None:
        miner = PatternMiner(similarity=1.0)  # no merging: the two groups widen only by masking
        for message in ("a 1", "a 2"):
            miner.add(message)
        assert [(p.template, p.count) for p in miner.patterns()] == [("a <*>", 2)]


class TestDeterminism:
    def test_same_input_same_templates(self) -> None:
        rnd = random.Random(5)
        messages = [f"{rnd.choice('abc')} {rnd.choice(['x', 'y', 'z'])} {rnd.randint(1, 9)} done" for _ in range(500)]
        first, second = PatternMiner(), PatternMiner()
        for message in messages:
            first.add(message, T0)
            second.add(message, T0)
        assert first.patterns() == second.patterns()

    def test_group_ids_name_the_final_template(self) -> None:
        miner = PatternMiner()
        ids = [miner.add(m) for m in ("job started alpha today", "job started beta today")]
        assert ids[0] == ids[1]
        assert miner.template_of(ids[0]) == "job started <*> today"


class TestSeen:
    def test_first_and_last_seen_are_the_extremes_in_any_order(self) -> None:
        times = [T0 + timedelta(minutes=m) for m in (30, 5, 55, 10)]
        miner = PatternMiner()
        for n, ts in enumerate(times):
            miner.add(f"tick {n}", ts)
        (pattern,) = miner.patterns()
        assert (pattern.first_seen, pattern.last_seen) == (min(times), max(times))

    def test_examples_are_distinct_and_bounded(self) -> None:
        miner = PatternMiner(examples=2)
        for message in ("tick 1", "tick 1", "tick 2", "tick 3"):
            miner.add(message)
        assert miner.patterns()[0].examples == ("tick 1", "tick 2")


class TestTrend:
    def test_buckets_sum_to_the_count_and_fall_where_the_times_are(self) -> None:
        window = Window(T0, T0 + timedelta(hours=1), buckets=4)
        miner = PatternMiner(window=window)
        minutes = [0, 1, 14, 15, 29, 44, 59, 59]
        for m in minutes:
            miner.add("tick 1", T0 + timedelta(minutes=m, seconds=30))
        (pattern,) = miner.patterns()
        assert pattern.trend == (3, 2, 1, 2)
        assert sum(pattern.trend) == pattern.count == len(minutes)

    def test_times_outside_the_window_count_at_its_edges(self) -> None:
        window = Window(T0, T0 + timedelta(hours=1), buckets=3)
        assert [window.bucket(T0 - timedelta(days=1)), window.bucket(T0 + timedelta(days=1))] == [0, 2]


# --- property: messages made from known templates are grouped back exactly ----------------------

# Arguments of the masked kinds, each drawn at random.
_ARGS = {
    "int": st.integers(min_value=0, max_value=10**9).map(str),
    "float": st.floats(min_value=0, max_value=1e6, allow_nan=False).map(lambda f: f"{f:.3f}"),
    "ms": st.integers(min_value=0, max_value=99_999).map(lambda n: f"{n}ms"),
    "uuid": st.uuids().map(str),
    "ip": st.tuples(*[st.integers(0, 255)] * 4, st.integers(1, 65535)).map(lambda t: "{}.{}.{}.{}:{}".format(*t)),
    "hex": st.binary(min_size=4, max_size=12).map(lambda b: "0x" + b.hex()),
    "email": st.tuples(
        st.text(string.ascii_lowercase, min_size=1, max_size=8), st.sampled_from(["example.com", "corp.io"])
    ).map(lambda t: f"{t[0]}@{t[1]}"),
    "quoted": st.text(string.ascii_letters + " _-", max_size=15).map(lambda s: f"'{s}'"),
}
_WORDS = st.text(string.ascii_lowercase, min_size=1, max_size=8)
_SLOT = st.one_of(_WORDS, st.sampled_from(sorted(_ARGS)).map(lambda k: f"{{{k}}}"))


@st.composite
def templates(draw: st.DrawFn) -> list[list[str]]:
    """2-6 distinct templates: each is words and `{kind}` slots, starting with a distinct word."""
    count = draw(st.integers(2, 6))
    leads = draw(st.lists(_WORDS, min_size=count, max_size=count, unique=True))
    return [[lead, *draw(st.lists(_SLOT, min_size=0, max_size=7))] for lead in leads]


@settings(max_examples=150, deadline=None)
@given(shapes=templates(), data=st.data())
def test_messages_from_known_templates_group_back_exactly(shapes: list[list[str]], data: st.DataObject) -> None:
    miner = PatternMiner()
    truth: dict[int, int] = {}
    for _ in range(data.draw(st.integers(5, 40))):
        which = data.draw(st.integers(0, len(shapes) - 1))
        parts = [data.draw(_ARGS[p[1:-1]]) if p.startswith("{") else p for p in shapes[which]]
        group = miner.add(" ".join(parts))
        truth.setdefault(group, which)
        assert truth[group] == which, "two templates share a group"
    found: dict[int, set[int]] = {}
    for group, which in truth.items():
        found.setdefault(which, set()).add(group)
    assert all(len(groups) == 1 for groups in found.values()), "one template split into several groups"
    assert sum(p.count for p in miner.patterns()) == miner.total
