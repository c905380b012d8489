"""The config loader: a full file becomes the model; every problem is named by its path, all at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from logpipe.config.flags import ShipFlags
from logpipe.config.load import ConfigError, load_file, load_text
from logpipe.config.model import (
    AgentConfig,
    ArchiveConfig,
    LogConfig,
    MetricsConfig,
    SinkConfig,
    SourceConfig,
)

FULL = textwrap.dedent("""\
    version: 1
    archive: {path: /srv/archive, enabled: true, min_level: DEBUG}
    state_dir: /srv/state
    flush_interval: 2.5
    labels: {env: prod}
    sources:
      - paths: ["/var/log/app/*.log", /var/log/other.log]
        format: structlog
        labels: {service: api}
        fields: {level: severity, user_id: [ctx.user.id, uid]}
      - paths: ["/var/log/worker/*.log"]
    sinks:
      - {name: search, url: "es://${ES_USER}:${ES_PASSWORD}@127.0.0.1:9200", min_level: INFO}
      - {name: errors, url: "kafka://127.0.0.1:9092/errors", min_level: ERROR}
    metrics: {addr: "127.0.0.1:9108"}
    log: {level: WARNING}
""")
ENV = {"ES_USER": "shipper", "ES_PASSWORD": "s3cret-pass"}


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_text(text, "test.yaml", env or {})
    return caught.value.problems


class TestValid:
    def test_full_file_becomes_the_model(self) -> None:
        """Every key of a full file lands in the typed model, ${ENV} substituted."""
        config = load_text(FULL, env=ENV).config
        assert config == AgentConfig(
            version=1,
            archive=ArchiveConfig(path="/srv/archive", enabled=True, min_level="DEBUG"),
            state_dir="/srv/state",
            flush_interval=2.5,
            labels={"env": "prod"},
            sources=(
                SourceConfig(
                    paths=("/var/log/app/*.log", "/var/log/other.log"),
                    format="structlog",
                    labels={"service": "api"},
                    fields={"level": ("severity",), "user_id": ("ctx.user.id", "uid")},
                ),
                SourceConfig(paths=("/var/log/worker/*.log",)),
            ),
            sinks=(
                SinkConfig(name="search", url="es://shipper:s3cret-pass@127.0.0.1:9200", min_level="INFO"),
                SinkConfig(name="errors", url="kafka://127.0.0.1:9092/errors", min_level="ERROR"),
            ),
            metrics=MetricsConfig(addr="127.0.0.1:9108"),
            log=LogConfig(level="WARNING"),
        )

    def test_defaults_in_one_place(self) -> None:
        """A minimal file gets the documented defaults."""
        config = load_text("version: 1\nsources: [{paths: [a.log]}]\n", env={}).config
        assert config.archive == ArchiveConfig(path="logpipe-data", enabled=True, min_level="TRACE")
        assert (config.state_dir, config.flush_interval, config.labels, config.sinks) == (None, 1.0, {}, ())
        assert config.sources[0].format == "auto"
        assert (config.metrics.addr, config.log.level) == (None, "INFO")

    def test_dollar_dollar_is_a_literal(self) -> None:
        """`$${X}` stays `${X}` and needs no variable."""
        config = load_text("version: 1\nsources: [{paths: [a.log]}]\nlabels: {tpl: 'x$${HOME}y'}\n", env={}).config
        assert config.labels == {"tpl": "x${HOME}y"}

    def test_secrets_stay_out_of_repr(self) -> None:
        """A sink URL (it may hold a password) is not part of the model's repr."""
        config = load_text(FULL, env=ENV).config
        assert "s3cret-pass" not in repr(config)


class TestProblems:
    def test_every_problem_is_reported_with_its_path(self) -> None:
        """Unknown keys, wrong types, bad levels, bad URLs, empty paths: all named in one error."""
        found = problems(
            textwrap.dedent("""\
            version: 2
            archive: {path: "", min_level: LOUD, extra: 1}
            flush_interval: "fast"
            labels: {env: 1}
            sources:
              - paths: [""]
                format: klingon
                fields: {colour: x}
            sinks:
              - {name: Search, urll: "es://h:9200"}
              - {name: archive, url: "ftp://nowhere"}
              - {name: loki, url: "loki://h:3100?bogus=1", min_level: info}
            metrics: {addr: "nohost"}
            log: {level: TRACE}
        """)
        )
        paths = [line.split(":", 1)[0] for line in found]
        assert paths == [
            "version",
            "archive.extra",
            "archive.path",
            "archive.min_level",
            "flush_interval",
            "labels.env",
            "sources[0].paths[0]",
            "sources[0].format",
            "sources[0].fields.colour",
            "sinks[0].urll",
            "sinks[0].name",
            "sinks[0].url",
            "sinks[1].name",
            "sinks[1].url",
            "sinks[2].url",
            "sinks[2].min_level",
            "metrics.addr",
            "log.level",
        ]
        assert "sinks[0].urll: unknown key (did you mean url?)" in found
        assert "sinks[0].url: is required" in found
        assert "flush_interval: expected a number, got a string" in found

    def test_duplicate_sink_names(self) -> None:
        """Two sinks of one name are refused (the name is a metric label)."""
        found = problems(
            "version: 1\nsources: [{paths: [a]}]\nsinks: [{name: s, url: 'es://h:1'}, {name: s, url: 'es://h:2'}]\n"
        )
        assert found == ["sinks: sink names must be unique: s used more than once"]

    def test_missing_variable_names_it_and_the_field(self) -> None:
        found = problems("version: 1\nsources: [{paths: ['${LOG_DIR}/*.log']}]\n")
        assert found == ["sources[0].paths[0]: environment variable LOG_DIR is not set"]

    def test_bad_references(self) -> None:
        found = problems("version: 1\nsources: [{paths: ['${1X}', '${OPEN']}]\n")
        assert found == [
            "sources[0].paths[0]: ${1X} is not a variable name",
            "sources[0].paths[1]: unclosed ${ (write $${ for a literal ${)",
        ]

    def test_secrets_are_masked_in_errors(self) -> None:
        """A value substituted from the environment never shows in a message."""
        text = "version: 1\nsources: [{paths: [a]}]\narchive: {min_level: '${PW}'}\n"
        found = problems(text, {"PW": "hunter2-secret"})
        assert found == ["archive.min_level: '***' is not one of TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL"]

    def test_duplicate_yaml_keys(self) -> None:
        """YAML would keep the last of two equal keys; the loader refuses them, with the line."""
        assert problems("version: 1\nsources: [{paths: [a]}]\nlabels: {env: a, env: b}\n") == [
            "line 3: duplicate key 'env'"
        ]

    def test_not_yaml_and_not_a_mapping(self) -> None:
        assert problems("version: [1\n")[0].startswith("not valid YAML (line 2")
        assert problems("- 1\n") == ["(top level): expected a mapping, got a list"]

    def test_required_keys(self) -> None:
        assert problems("archive: {path: x}\n") == ["version: is required", "sources: is required"]
        assert problems("version: 1\nsources: []\n") == ["sources: needs at least 1 item"]

    def test_archive_off_needs_a_sink(self) -> None:
        found = problems("version: 1\nsources: [{paths: [a]}]\narchive: {enabled: false}\n")
        assert found == ["archive.enabled: false needs at least one sink, or records would go nowhere"]

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(Exception, match="does not exist"):
            load_file(tmp_path / "nope.yaml")


class TestFlags:
    def test_flags_map_onto_the_same_model(self) -> None:
        """The ship flags give exactly the config a file with the same content gives."""
        flags = ShipFlags(
            paths=["/var/log/*.log"],
            archive=Path("/srv/a"),
            state_dir=Path("/srv/s"),
            format_name="zap",
            labels=["env=prod", "service=api"],
            fields=["level=severity", "level=lvl"],
            to=["es://h:9200", "kafka://k:9092/t", "es://g:9200"],
            no_archive=True,
            flush_interval=0.5,
            metrics_addr="127.0.0.1:9108",
        )
        from_file = load_text(
            textwrap.dedent("""\
            version: 1
            archive: {path: /srv/a, enabled: false}
            state_dir: /srv/s
            flush_interval: 0.5
            metrics: {addr: "127.0.0.1:9108"}
            labels: {env: prod, service: api}
            sources: [{paths: ["/var/log/*.log"], format: zap, fields: {level: [severity, lvl]}}]
            sinks:
              - {name: elasticsearch, url: "es://h:9200"}
              - {name: kafka, url: "kafka://k:9092/t"}
              - {name: elasticsearch-2, url: "es://g:9200"}
        """),
            env={},
        )
        assert flags.to_config(env={}).config == from_file.config

    def test_flag_problems_name_the_flags(self) -> None:
        """Messages about flags say `--label`, `--field`, `--to`, not field paths."""
        flags = ShipFlags(
            paths=["a.log"],
            labels=["novalue", "bad key=x"],
            fields=["colour=x"],
            to=["ftp://x"],
            flush_interval=0,
            metrics_addr="9108",
        )
        with pytest.raises(ConfigError) as caught:
            flags.to_config(env={})
        lines = caught.value.problems
        assert lines[0] == "--label expects KEY=VALUE, got 'novalue'"
        assert [line.split(":", 1)[0] for line in lines[1:]] == [
            "--flush-interval",
            "--label bad key",
            "--field colour",
            "--to",
            "--metrics-addr",
        ]

    def test_given_flags(self) -> None:
        assert ShipFlags(paths=["a"], to=["es://h:1"], no_archive=True).given() == ["PATHS", "--to", "--no-archive"]
        assert ShipFlags().given() == []
