"""Pure parts of the Loki sink: URL options, secrets, the 400-reason matcher, the protobuf varint."""

from __future__ import annotations

import pytest

from logpipe.errors import UsageError
from logpipe.sinks.loki.config import parse_loki_target, safe_url
from logpipe.sinks.loki.encode import Stream, encode_protobuf, level_label, refused_rows, varint
from tests.support.loki_double import decode_protobuf


class TestConfig:
    def test_defaults(self) -> None:
        """Protobuf, Loki's push path, port 3100, level among the labels, context as metadata."""
        c = parse_loki_target("loki://h", env={})
        assert (c.url, c.path, c.encoding) == ("http://h:3100", "/loki/api/v1/push", "protobuf")
        assert c.labels == ("service", "level", "host", "env")
        assert c.metadata == ("request_id", "user_id", "session_id", "endpoint", "trace_id")

    def test_options(self) -> None:
        c = parse_loki_target(
            "loki+https://h:9?encoding=json&gzip=1&tenant=t&labels=level,region&line=message"
            "&path=/insert/loki/api/v1/push&batch_kb=8&batch_entries=5",
            env={},
        )
        assert c.url == "https://h:9" and c.gzip and c.tenant == "t" and c.labels == ("level", "region")
        assert (c.line, c.batch_bytes, c.batch_entries) == ("message", 8192, 5)
        assert c.headers()["X-Scope-OrgID"] == "t" and c.headers()["Content-Encoding"] == "gzip"

    @pytest.mark.parametrize(
        "url",
        [
            "loki://h?colour=red",
            "loki://h?encoding=xml",
            "loki://h?labels=level,user_id",
            "loki://h?labels=service",
            "loki://h?gzip=true",
            "loki://u@h",
            "es://h",
            "loki://h/loki/api/v1/push",
            "loki://h?labels=level,bad-name",
        ],
    )
    def test_bad_urls_fail_at_start(self, url: str) -> None:
        with pytest.raises(UsageError):
            parse_loki_target(url, env={})

    def test_secrets_stay_out_of_repr_display_and_messages(self) -> None:
        c = parse_loki_target("loki://me:pw-123@h?token=tk-456", env={})
        assert "pw-123" not in repr(c) and "tk-456" not in repr(c) and "pw-123" not in c.display_url
        assert c.mask("echo pw-123 tk-456") == "echo *** ***"
        assert "tk-456" not in safe_url("loki://me:pw-123@h?token=tk-456")
        assert c.headers()["Authorization"] == "Bearer tk-456"  # a token wins over basic auth


class TestEncode:
    def test_level_labels_are_lower_case(self) -> None:
        assert [level_label(x) for x in ("WARNING", "ERROR", "DEBUG")] == ["warning", "error", "debug"]

    @pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 2**31, 2**63 - 1])
    def test_varint(self, n: int) -> None:
        """Base-128, little-endian groups, high bit = more."""
        out = varint(n)
        assert sum((b & 0x7F) << (7 * i) for i, b in enumerate(out)) == n
        assert all(b & 0x80 for b in out[:-1]) and not out[-1] & 0x80

    def test_protobuf_round_trips_through_an_independent_decoder(self) -> None:
        s = Stream(
            '{level="info"}',
            {"level": "info"},
            [1_700_000_000_123_456_789, 5],
            ["a ü", ""],
            [[("request_id", "r1")], []],
            [0, 1],
        )
        [(labels, entries)] = decode_protobuf(encode_protobuf([s]))
        assert labels == {"level": "info"}
        assert [(e.ts_ns, e.line, e.metadata) for e in entries] == [
            (1_700_000_000_123_456_789, "a ü", {"request_id": "r1"}),
            (5, "", {}),
        ]


class TestRefusedRows:
    def _streams(self) -> list[Stream]:
        base = 1_800_000_000 * 10**9
        return [
            Stream('{level="info", service="a"}', {}, [base, base + 2 * 10**9], ["", ""], [[], []], [0, 1]),
            Stream('{level="error", service="a"}', {}, [base], [""], [[]], [2]),
        ]

    def test_a_named_entry_time_refuses_only_that_entry(self) -> None:
        reason = 'entry for stream \'{level="info", service="a"}\' has timestamp too old: 2027-01-15T08:00:00Z, oldest acceptable timestamp is: 2027-02-01T00:00:00Z'
        assert refused_rows(reason, self._streams()) == [0]

    def test_a_named_stream_without_times_refuses_the_stream(self) -> None:
        assert refused_rows('stream \'{level="error", service="a"}\' has label value too long', self._streams()) == [2]

    def test_an_unspecific_reason_refuses_the_whole_request(self) -> None:
        assert refused_rows("invalid request", self._streams()) == [0, 1, 2]
