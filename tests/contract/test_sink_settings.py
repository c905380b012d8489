"""The parts of the sink contract that need no server: every sink folder has the same modules,
the registry alone decides which sink a URL names, and no sink's settings show a secret."""

from __future__ import annotations

import importlib
import inspect
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from logpipe.errors import TransientError, UsageError
from logpipe.sinks import base
from logpipe.sinks.registry import BY_SCHEME, KINDS, kind_of, parse_sink_url
from logpipe.sinks.retry import Outage, RetryPolicy

SINKS = Path(base.__file__).parent
FOLDER_MODULES = ["__init__.py", "config.py", "deps.py", "encode.py", "health.py", "sink.py"]
CONTRACT = [name for name, member in inspect.getmembers(base.Sink) if not name.startswith("_") and callable(member)]


class TestLayout:
    @pytest.mark.parametrize("kind", ["archive", *(k.kind for k in KINDS)])
    def test_every_sink_folder_has_the_same_modules(self, kind: str) -> None:
        assert sorted(p.name for p in (SINKS / kind).glob("*.py")) == FOLDER_MODULES

    def test_the_contract_names_every_method(self) -> None:
        assert sorted(CONTRACT) == [
            "buffered_bytes",
            "close",
            "describe",
            "flush",
            "health",
            "in_flight_bytes",
            "interrupt",
            "send",
        ]

    @pytest.mark.parametrize(
        "module",
        [
            "logpipe.sinks.archive.sink:ArchiveSink",
            "logpipe.sinks.archive.sink:DeadLettersOnly",
            "logpipe.sinks.elasticsearch.sink:EsSink",
            "logpipe.sinks.loki.sink:LokiSink",
            "logpipe.sinks.kafka.sink:KafkaSink",
            "logpipe.sinks.routing:Routed",
        ],
    )
    def test_every_sink_class_defines_every_method_of_the_contract(self, module: str) -> None:
        path, name = module.split(":")
        cls = getattr(importlib.import_module(path), name)
        assert [m for m in CONTRACT if m not in vars(cls)] == []  # its own, not reached by __getattr__


class TestRegistry:
    @pytest.mark.parametrize(
        ("url", "kind"),
        [
            ("es://h:9200", "elasticsearch"),
            ("es+https://h:9200", "elasticsearch"),
            ("http://h:9200", "elasticsearch"),
            ("https://h", "elasticsearch"),
            ("loki://h:3100", "loki"),
            ("loki+https://h", "loki"),
            ("kafka://h:9092/t", "kafka"),
            ("KAFKA+SSL://h:9092/t", "kafka"),
        ],
    )
    def test_the_scheme_names_the_sink_and_its_settings_name_it_back(self, url: str, kind: str) -> None:
        settings = parse_sink_url(url)
        assert kind_of(settings).kind == kind
        assert type(settings).__module__ == f"logpipe.sinks.{kind}.config" or kind == "elasticsearch"

    def test_each_config_module_parses_exactly_the_schemes_the_registry_gives_it(self) -> None:
        for scheme, kind in BY_SCHEME.items():
            module = importlib.import_module(f"{kind.package}.config")
            parsed = module.parse(f"{scheme}://h:1/topic" if kind.kind == "kafka" else f"{scheme}://h:1")
            assert kind.kind == parsed.KIND, scheme

    @pytest.mark.parametrize("url", ["ftp://h", "s3://bucket/x", "h:9200", "elastic://h"])
    def test_an_unknown_scheme_is_a_usage_error_that_lists_the_known_ones(self, url: str) -> None:
        with pytest.raises(UsageError, match=r"is not a sink; use es://HOST:PORT .*kafka://HOST:PORT/TOPIC or loki://"):
            parse_sink_url(url)


SECRET_PW, SECRET_TOKEN = "pw-Zq81x", "tok-Yk55w"


def settings_with_secrets(kind: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[str]]:
    if kind == "elasticsearch":
        return parse_sink_url(f"es://shipper:{SECRET_PW}@h:9200?api_key={SECRET_TOKEN}"), [SECRET_PW, SECRET_TOKEN]
    if kind == "loki":
        return parse_sink_url(f"loki://shipper:{SECRET_PW}@h:3100?token={SECRET_TOKEN}"), [SECRET_PW, SECRET_TOKEN]
    monkeypatch.setenv("LOGPIPE_KAFKA_USERNAME", "shipper")
    monkeypatch.setenv("LOGPIPE_KAFKA_PASSWORD", SECRET_PW)
    return parse_sink_url("kafka://h:9092/logs?sasl=scram-sha-512"), [SECRET_PW]


class TestSecrets:
    @pytest.mark.parametrize("kind", [k.kind for k in KINDS])
    def test_settings_never_show_a_secret(self, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
        settings, secrets = settings_with_secrets(kind, monkeypatch)
        assert all(s in settings.secrets for s in secrets), "the secrets were parsed (or this test proves nothing)"
        shown = [repr(settings), str(settings), settings.describe(), settings.display_url, f"{settings}"]
        assert [s for s in secrets for text in shown if s in text] == []
        assert "***" in repr(settings)
        echoed = settings.mask(f"401 for shipper:{secrets[0]} ({secrets[-1]})")
        assert echoed == "401 for shipper:*** (***)"

    @pytest.mark.parametrize("kind", [k.kind for k in KINDS])
    def test_a_sink_summary_never_shows_a_secret(self, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
        settings, secrets = settings_with_secrets(kind, monkeypatch)
        sink = kind_of(settings).open(settings, dead_letters=lambda batch: None)
        try:
            line = sink.describe()
        finally:
            sink.close()
        assert line.startswith(settings.display_url) and not [s for s in secrets if s in line]

    def test_the_archive_settings_show_their_folder(self, tmp_path: Path) -> None:
        from logpipe.sinks.archive.config import ArchiveConfig

        config = ArchiveConfig(tmp_path / "a")
        assert (
            repr(config)
            == f"ArchiveConfig(path={tmp_path / 'a'!r}, shared=False, compact_min_files={config.compact_min_files}, compact_while_writing=True)"
        )
        assert config.describe() == str(tmp_path / "a")


class TestOutagePolicy:
    def test_by_default_a_sink_never_gives_up(self) -> None:
        """The first rule: no bound unless a person sets one (retry_for)."""
        assert RetryPolicy().give_up_after_s == 0
        for url in ("es://h:9200", "loki://h:3100"):
            assert parse_sink_url(url).retry_for_s == 0, url  # type: ignore[attr-defined]
        clock = [0.0]
        outage = Outage(RetryPolicy(max_backoff_s=1.0), threading.Event(), "t", clock=lambda: clock[0])
        for _ in range(1000):  # a day and more of failed attempts
            clock[0] += 100.0
            assert outage.next_wait("1 record not sent", "down") <= 1.0

    def test_a_bound_set_by_a_person_raises_transient_without_progress_and_resets_with_it(self) -> None:
        clock = [0.0]
        outage = Outage(
            RetryPolicy(max_backoff_s=1.0, give_up_after_s=10.0), threading.Event(), "t", clock=lambda: clock[0]
        )
        clock[0] = 9.5
        outage.progressed()  # the server took part of it: the count starts again
        clock[0] = 18.0
        outage.next_wait("x", "y")
        clock[0] = 20.0
        with pytest.raises(TransientError, match="nothing succeeded for 10s"):
            outage.next_wait("3 records not sent", "down")

    def test_interrupt_ends_the_wait_at_once(self) -> None:
        interrupted = threading.Event()
        outage = Outage(RetryPolicy(), interrupted, "t")
        threading.Timer(0.2, interrupted.set).start()
        started = time.monotonic()
        with pytest.raises(TransientError, match="will be read again"):
            outage.wait(30.0, "3 records not sent", "down")
        assert time.monotonic() - started < 5


def test_the_engine_settings_the_query_side_uses_import_nothing_of_the_sinks() -> None:
    """The secrets base is outside logpipe.sinks: query and retention read EsConfig without the shipping side."""
    import subprocess
    import sys

    code = "import sys, logpipe.engine.config\nprint(sorted(m for m in sys.modules if m.startswith('logpipe.sinks')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
