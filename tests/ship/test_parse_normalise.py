"""Normalisation of single fields: timestamps, levels, coercions, templates, keys, labels, overrides."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from parse_support import READ_TIME_US, attrs, lines, one, rows, run, transformer

from logpipe.enrich.templates import endpoint_template, message_key
from logpipe.parse.profiles import PROFILES, FieldOverrides, parse_field_override

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INSTANT = datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC)
READ_TIME = EPOCH + timedelta(microseconds=READ_TIME_US)


def _ts(value: object, **kw: object) -> datetime:
    return one({"timestamp": value, "message": "m"}, **kw)["ts"]  # type: ignore[arg-type]


def _us(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(microseconds=1)


class TestTimestamps:
    """ts from unix numbers by magnitude and from ISO 8601 strings, always UTC."""

    @pytest.mark.parametrize(
        ("unit", "per_second"),
        [("s", 1), ("ms", 1_000), ("us", 1_000_000), ("ns", 1_000_000_000)],
    )
    def test_integers(self, unit: str, per_second: int) -> None:
        """An integer in s/ms/µs/ns is the instant it encodes, at that unit's precision."""
        us = _us(INSTANT)
        value = us * per_second // 1_000_000
        expected = EPOCH + timedelta(microseconds=value * 1_000_000 // per_second)
        assert _ts(value) == expected
        assert _ts(str(value)) == expected  # a number written as a string too

    @pytest.mark.parametrize("per_second", [1, 1_000, 1_000_000])
    def test_floats(self, per_second: int) -> None:
        """A float in s/ms/µs keeps its fraction (to the microsecond)."""
        value = _us(INSTANT) / 1_000_000 * per_second
        assert abs(_ts(value) - datetime.fromtimestamp(value / per_second, tz=UTC)) <= timedelta(microseconds=1)

    @pytest.mark.parametrize(
        "text",
        [
            "2026-11-20T10:00:00Z",
            "2026-11-20T10:00:00.123456Z",
            "2026-11-20T12:00:00+02:00",
            "2026-11-20T04:30:00.5-05:30",
            "2026-11-20T10:00:00.123+00:00",
            "2026-11-20 23:59:59.999999+14:00",
        ],
    )
    def test_iso_with_offset(self, text: str) -> None:
        """An ISO 8601 string with any offset is the instant it names, in UTC."""
        assert _ts(text) == datetime.fromisoformat(text)

    @pytest.mark.parametrize("text", ["2026-11-20T10:00:00", "2026-11-20 10:00:00.250", "2026-11-20 10:00:00,123"])
    def test_naive_is_utc(self, text: str) -> None:
        """A naive timestamp (also with python's comma before milliseconds) means UTC."""
        assert _ts(text) == datetime.fromisoformat(text.replace(",", ".")).replace(tzinfo=UTC)

    @settings(max_examples=40, deadline=None)
    @given(
        st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
        st.integers(-14 * 60, 14 * 60),
    )
    def test_rfc3339_lower_case_t_and_z(self, instant: datetime, offset_min: int) -> None:
        """RFC 3339 allows `t` and `z` in lower case: the same instant as upper case (regression)."""
        local = instant.astimezone(timezone(timedelta(minutes=offset_min))).isoformat()
        assert _ts(local.replace("T", "t")) == instant
        assert _ts(instant.isoformat().replace("+00:00", "z").replace("T", "t")) == instant
        assert "_logpipe" not in attrs(one({"timestamp": "2026-11-20t10:00:09z", "message": "m"}))

    @pytest.mark.parametrize(
        ("text", "last_of_minute"),
        [
            ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
            ("2016-12-31T23:59:60.250Z", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
            ("2017-01-01T00:59:60+01:00", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
            ("2015-06-30 23:59:60", datetime(2015, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)),
        ],
    )
    def test_leap_second_is_the_last_microsecond_of_its_minute(self, text: str, last_of_minute: datetime) -> None:
        """A leap second (`:60`, RFC 3339) is read, as the minute's last microsecond: its day kept (regression)."""
        row = one({"timestamp": text, "message": "m"})
        assert row["ts"] == last_of_minute
        assert "_logpipe" not in attrs(row)

    @pytest.mark.parametrize("text", ["2016-12-31T23:59:61Z", "2016-12-31T24:00:60Z", "2026-11-20x10:00:09z"])
    def test_not_a_leap_second_is_no_time(self, text: str) -> None:
        """Second 61, a leap second at 24:00 and any other separator stay unreadable, flagged."""
        assert attrs(one({"timestamp": text, "message": "m"}))["_logpipe"]["ts"] == "read_time"

    @pytest.fixture
    def new_york(self) -> Iterator[None]:
        old = os.environ.get("TZ")
        os.environ["TZ"] = "America/New_York"
        time.tzset()
        try:
            yield
        finally:
            if old is None:
                del os.environ["TZ"]
            else:
                os.environ["TZ"] = old
            time.tzset()

    @pytest.mark.usefixtures("new_york")
    def test_host_time_zone_ignored(self) -> None:
        """On a host whose local zone is not UTC, naive and numeric times still mean UTC (regression)."""
        naive = "2026-11-20T10:00:00"
        assert _ts(naive) == datetime.fromisoformat(naive).replace(tzinfo=UTC)
        assert _ts(_us(INSTANT) // 1_000_000) == INSTANT.replace(microsecond=0)

    @pytest.mark.parametrize("value", [None, "yesterday", "", True, {"a": 1}])
    def test_missing_or_unparseable_is_read_time_flagged(self, value: object) -> None:
        """Without a usable ts the read time is used and `_logpipe.ts` says so (with the raw text)."""
        rec = {"message": "m"} if value is None else {"timestamp": value, "message": "m"}
        row = one(rec)
        assert row["ts"] == READ_TIME
        flags = attrs(row)["_logpipe"]
        assert flags["ts"] == "read_time"
        assert ("ts_raw" in flags) == (value is not None)

    @settings(max_examples=40, deadline=None)
    @given(
        st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
        st.integers(-14 * 60, 14 * 60),
    )
    def test_iso_roundtrip(self, instant: datetime, offset_min: int) -> None:
        """Any instant written as ISO 8601 at any minute offset reads back exactly."""
        local = instant.astimezone(timezone(timedelta(minutes=offset_min)))
        assert _ts(local.isoformat()) == instant


class TestLevels:
    """Level names in any case, library synonyms, numeric schemes; unknown -> INFO, flagged."""

    NAMES = {
        "trace": "TRACE",
        "debug": "DEBUG",
        "info": "INFO",
        "notice": "INFO",
        "warn": "WARNING",
        "warning": "WARNING",
        "err": "ERROR",
        "error": "ERROR",
        "crit": "CRITICAL",
        "critical": "CRITICAL",
        "fatal": "CRITICAL",
        "panic": "CRITICAL",
        "dpanic": "CRITICAL",
    }

    @pytest.mark.parametrize("name", sorted(NAMES))
    def test_names_any_case(self, name: str) -> None:
        """A level name maps the same in lower, upper and title case, with surrounding spaces."""
        data = lines(*({"level": v, "message": "m"} for v in (name, name.upper(), name.title(), f" {name} ")))
        assert {r["level"] for r in rows(run(data))} == {self.NAMES[name]}

    def test_pino_numbers(self) -> None:
        """pino/bunyan 10..60 (and between-values) map to their decade's level."""
        expected = ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
        data = lines(*({"level": n, "msg": "m", "time": 0} for n in (10, 20, 30, 40, 50, 60, 35)))
        assert [r["level"] for r in rows(run(data, "pino"))] == [*expected, "INFO"]

    def test_syslog_numbers(self) -> None:
        """Syslog severities 0..7 (emerg..debug) map in the default profile."""
        expected = ["CRITICAL", "CRITICAL", "CRITICAL", "ERROR", "WARNING", "INFO", "INFO", "DEBUG"]
        data = lines(*({"level": n, "message": "m"} for n in range(8)))
        assert [r["level"] for r in rows(run(data))] == expected

    def test_ecs_log_level(self) -> None:
        """ECS `log.level` (dotted key) and nested log.level both give the level."""
        data = lines(
            {"@timestamp": "2026-01-01T00:00:00Z", "log.level": "warn", "message": "a", "ecs.version": "1"},
            {"@timestamp": "2026-01-01T00:00:00Z", "log": {"level": "ERROR"}, "message": "b", "ecs.version": "1"},
        )
        assert [r["level"] for r in rows(run(data, "ecs"))] == ["WARNING", "ERROR"]

    @pytest.mark.parametrize("value", ["loud", "", True, "99x"])
    def test_unknown_is_info_flagged(self, value: object) -> None:
        """An unknown level becomes INFO and its raw text is kept under `_logpipe.level_raw`."""
        row = one({"level": value, "message": "m", "timestamp": 0})
        assert row["level"] == "INFO"
        assert attrs(row)["_logpipe"]["level_raw"] == (value if isinstance(value, str) else "true")

    def test_missing_is_info_unflagged(self) -> None:
        """No level at all is INFO without a flag."""
        assert attrs(one({"message": "m", "timestamp": 0})) == {}
        assert one({"message": "m", "timestamp": 0})["level"] == "INFO"


class TestCoercions:
    """status and duration_ms from numbers or numeric strings; garbage flagged, not lost."""

    @pytest.mark.parametrize(("raw", "status"), [(200, 200), ("404", 404), (503.0, 503), ("201.0", 201)])
    def test_status(self, raw: object, status: int) -> None:
        """A status number or numeric string becomes an int."""
        assert one({"message": "m", "timestamp": 0, "status": raw})["status"] == status

    @pytest.mark.parametrize(("raw", "ms"), [(12.5, 12.5), ("7", 7.0), (0, 0.0), ("1e3", 1000.0)])
    def test_duration(self, raw: object, ms: float) -> None:
        """duration_ms from a number or a numeric string is a float."""
        assert one({"message": "m", "timestamp": 0, "duration_ms": raw})["duration_ms"] == ms

    @pytest.mark.parametrize(
        "name",
        [
            "duration",
            "response_time",
            "responseTime",
            "latency_ms",
            "elapsed_ms",
            "took_ms",
            "durationMs",
            "duration_s",
            "latency_seconds",
        ],
    )
    @pytest.mark.parametrize("fmt", ["python-json-logger", "structlog", "winston", "zap", "logrus"])
    def test_duration_names_in_their_units(self, name: str, fmt: str) -> None:
        """The common duration names, each in its unit: `*_ms` and the seed's bare `duration` are
        ms, `*_s`/`*_seconds` seconds; Go loggers' bare names are seconds (zap) or nanoseconds
        (logrus, not read: kept in attrs) (#20 item 13)."""
        row = one({"message": "m", "event": "m", "timestamp": 0, name: 1.2345}, fmt)
        seconds = name.endswith(("_s", "_seconds")) or (fmt == "zap" and name == "duration")
        # Not read (Go: ms-meaning bare names are not zap's; logrus's are nanoseconds): kept in attrs.
        unread = {"zap": ("response_time", "responseTime"), "logrus": ("duration", "response_time", "responseTime")}
        if name in unread.get(fmt, ()):
            assert (row["duration_ms"], attrs(row)[name]) == (None, 1.2345)
        else:
            assert row["duration_ms"] == (1234.5 if seconds else 1.2345) and name not in attrs(row)

    def test_a_duration_in_seconds_that_is_no_number_is_kept_raw(self) -> None:
        row = one({"message": "m", "timestamp": 0, "duration_s": "1.5s"})
        assert row["duration_ms"] is None and attrs(row)["_logpipe"] == {"duration_raw": "1.5s"}

    @pytest.mark.parametrize("name", ["status", "status_code", "statusCode", "http_status", "response_status"])
    def test_status_names(self, name: str) -> None:
        assert one({"message": "m", "timestamp": 0, name: "503"})["status"] == 503

    @pytest.mark.parametrize("name", ["path", "endpoint", "url", "http_path", "request_path"])
    def test_path_names_are_raw_paths_templated(self, name: str) -> None:
        """The seed's `endpoint` is the path as requested: `path` keeps it, `endpoint` is its template."""
        row = one({"message": "m", "timestamp": 0, name: "/api/users/42/posts?page=2"})
        assert (row["path"], row["endpoint"]) == ("/api/users/42/posts?page=2", "/api/users/{id}/posts")
        assert name not in attrs(row)

    def test_garbage_flagged(self) -> None:
        """Non-numeric status/duration become NULL and the raw values are kept under `_logpipe`."""
        row = one({"message": "m", "timestamp": 0, "status": "OK", "duration_ms": "fast"})
        assert (row["status"], row["duration_ms"]) == (None, None)
        assert attrs(row)["_logpipe"] == {"status_raw": "OK", "duration_raw": "fast"}


def _template(path: str) -> str:
    """An independent Python rendering of the documented endpoint rule."""
    path = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/]*", "", path)
    path = re.split(r"[?#]", path, maxsplit=1)[0]
    ident = re.compile(
        r"\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{16,}"
    )
    return "/".join("{id}" if i and ident.fullmatch(seg) else seg for i, seg in enumerate(path.split("/")))


def _message_key(message: str) -> str:
    """An independent Python rendering of the documented message-key rule."""
    return re.sub(r"[0-9A-Fa-f.:-]*[0-9][0-9A-Fa-f.:-]*", "<*>", message)


class TestEndpointTemplates:
    """`endpoint` is the path with ids replaced by {id}; the raw path stays in `path`."""

    @pytest.mark.parametrize(
        ("path", "endpoint"),
        [
            ("/api/users/123", "/api/users/{id}"),
            ("/api/users/123/orders", "/api/users/{id}/orders"),
            ("/a/1/2", "/a/{id}/{id}"),
            ("/a/1/2/3/b", "/a/{id}/{id}/{id}/b"),
            ("/orders/3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b/items", "/orders/{id}/items"),
            ("/docs/507f1f77bcf86cd799439011", "/docs/{id}"),
            ("/search?q=42&page=3", "/search"),
            ("/users/7#top", "/users/{id}"),
            ("https://example.com:8443/api/v2/users/9?x=1", "/api/v2/users/{id}"),
            ("/api/v2/health", "/api/v2/health"),
            ("/files/abc123", "/files/abc123"),
            ("/", "/"),
        ],
    )
    def test_examples(self, path: str, endpoint: str) -> None:
        """Numbers, UUIDs, 24-hex ObjectIds are ids; query, fragment, scheme and host go."""
        row = one({"message": "m", "timestamp": 0, "path": path})
        assert (row["endpoint"], row["path"]) == (endpoint, path)
        assert _template(path) == endpoint  # the independent rule agrees with the examples

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(
            st.one_of(
                st.integers(0, 10**12).map(str),
                st.uuids().map(str),
                st.text("0123456789abcdef", min_size=16, max_size=40),
                st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True),
            ),
            max_size=6,
        )
    )
    def test_property(self, segments: list[str]) -> None:
        """For any path of words and ids the template equals the independent rule."""
        path = "/" + "/".join(segments)
        assert endpoint_template(path) == _template(path)


class TestMessageKeys:
    """message_key masks numbers and ids, for WARNING and above only."""

    @pytest.mark.parametrize(
        ("message", "key"),
        [
            ("user 41 failed", "user <*> failed"),
            ("order 3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b not found", "order <*> not found"),
            ("connect to 10.0.0.12:5432 refused", "connect to <*> refused"),
            ("doc 507f1f77bcf86cd799439011 missing", "doc <*> missing"),
            ("took 1.5s", "took <*>s"),
            ("no ids here", "no ids here"),
        ],
    )
    def test_masks(self, message: str, key: str) -> None:
        """Numbers, UUIDs, IPs with ports and hex ids become <*>."""
        assert one({"message": message, "level": "ERROR", "timestamp": 0})["message_key"] == key

    def test_groups_collapse(self) -> None:
        """Messages that differ only in ids share one key."""
        data = lines(*({"message": f"user {n} failed at step {n * 7}", "level": "warning"} for n in range(50)))
        assert {r["message_key"] for r in rows(run(data))} == {"user <*> failed at step <*>"}

    def test_only_warning_and_above(self) -> None:
        """By design INFO and below get a NULL key (grouping is for problems)."""
        levels = ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
        data = lines(*({"message": "id 5", "level": lv} for lv in levels))
        assert [r["message_key"] for r in rows(run(data))] == [None] * 3 + ["id <*>"] * 3

    @settings(max_examples=40, deadline=None)
    @given(
        st.lists(st.from_regex(r"[g-z]{1,6}", fullmatch=True), min_size=1, max_size=5),
        st.integers(0, 10**9),
    )
    def test_number_masked_property(self, words: list[str], n: int) -> None:
        """Any number placed among id-free words is masked and the words are kept."""
        assert message_key(" ".join([*words, str(n)])) == " ".join([*words, "<*>"])

    @settings(max_examples=200, deadline=None)
    @given(st.text(alphabet=st.sampled_from("abcdefxyz 0123456789.:-_/éü€"), max_size=40))
    def test_any_text_property(self, text: str) -> None:
        """For any text the key equals the independent regular-expression rule."""
        assert message_key(text) == _message_key(text)


class TestLabels:
    """`--label`: service/host fill gaps; other labels go into attrs without overriding the record."""

    def test_service_host_fill_only_when_missing(self) -> None:
        """A record's own service/host win; the labels fill records without them."""
        t = transformer({"service": "lab-svc", "host": "lab-host"})
        got = rows(
            run(
                lines({"message": "a", "service": "own", "hostname": "own-host"}, {"message": "b"}),
                t=t,
            )
        )
        assert [(r["service"], r["host"]) for r in got] == [
            ("own", "own-host"),
            ("lab-svc", "lab-host"),
        ]

    def test_other_labels_in_attrs(self) -> None:
        """Extra labels are added to attrs; a record key of the same name wins, null values too (regression)."""
        t = transformer({"host": "h", "env": "prod", "region": "eu"})
        data = lines(
            {"message": "a"},
            {"message": "b", "env": "staging"},
            {"message": "c", "env": None, "x": {"y": None}, "region_note": "region"},
        )
        got = [attrs(r) for r in rows(run(data, t=t))]
        assert got[0] == {"env": "prod", "region": "eu", "_logpipe": {"ts": "read_time"}}
        assert got[1] == {"env": "staging", "region": "eu", "_logpipe": {"ts": "read_time"}}
        assert got[2] == {
            "env": None,
            "x": {"y": None},
            "region_note": "region",
            "region": "eu",
            "_logpipe": {"ts": "read_time"},
        }

    def test_label_with_escaped_name(self) -> None:
        """A label whose name JSON escapes still never overrides the record's key."""
        t = transformer({"host": "h", 'we"ird': "label"})
        got = [attrs(r) for r in rows(run(lines({"message": "a", 'we"ird': 1}, {"message": "b"}), t=t))]
        assert [a['we"ird'] for a in got] == [1, "label"]


class TestFieldOverrides:
    """`--field NAME=PATH` puts a user path first for a canonical field."""

    def test_parse(self) -> None:
        """FIELD=dotted.path splits into a path tuple; bad input is refused with a clear message."""
        assert parse_field_override("level=severity") == ("level", ("severity",))
        assert parse_field_override(" user_id = ctx.user.id ") == ("user_id", ("ctx", "user", "id"))
        with pytest.raises(ValueError, match=r"expected FIELD=JSON\.PATH"):
            parse_field_override("level")
        with pytest.raises(ValueError, match="unknown field 'nope'"):
            parse_field_override("nope=x")

    def test_override_through_pipeline(self) -> None:
        """Overridden paths (also nested) feed the canonical fields and leave attrs."""
        fields = FieldOverrides({"level": (("sev",),), "user_id": (("ctx", "user", "id"),), "message": (("text",),)})
        t = transformer(fields=fields)
        row = rows(
            run(
                lines(
                    {
                        "sev": "error",
                        "text": "hi",
                        "message": "other",
                        "ctx": {"user": {"id": "u1"}},
                    }
                ),
                t=t,
            )
        )[0]
        assert (row["level"], row["message"], row["user_id"]) == ("ERROR", "hi", "u1")
        a = attrs(row)
        assert "sev" not in a and a["ctx"] == {"user": {"id": "u1"}}  # nested sources stay whole

    def test_override_replaces_expression(self) -> None:
        """A field built by a combine rule (ECS duration) takes the user path as is."""
        profile = FieldOverrides({"duration_ms": (("took",),)}).apply(PROFILES["ecs"])
        assert profile.fields["duration_ms"].paths == (("took",),)
        assert profile.fields["duration_ms"].combine == "first"

    def test_a_user_path_is_in_the_fields_unit_and_the_profiles_keep_theirs(self) -> None:
        """`--field duration_ms=took`: `took` is ms (first); the profile's seconds names stay seconds."""
        t = transformer(fields=FieldOverrides({"duration_ms": (("took",),)}))
        got = rows(run(lines({"took": 7, "duration_s": 9}, {"duration_s": 0.25}), t=t))
        assert [r["duration_ms"] for r in got] == [7.0, 250.0]
        assert attrs(got[0]) == {"duration_s": 9, "_logpipe": {"ts": "read_time"}}
