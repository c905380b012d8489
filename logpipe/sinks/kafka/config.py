"""`kafka://HOST:PORT[,HOST:PORT…]/TOPIC?option=value…` -> a typed, validated config.

Options (query string): `mode` record|batch (one message per record, or one NDJSON message per
batch of up to `batch_records`), `key` a canonical column used as the message key (default
request_id, so a request's records stay ordered in one partition; `none` for no key),
`compression` zstd|lz4|gzip|snappy|none (default zstd), `linger_ms` (default 20), `batch_bytes`
(producer batch size, default 1 MiB), `group` (consumer group, for `logpipe ingest --from`).
`kafka+ssl://` uses TLS (`ca` option for a CA file). SASL credentials come from
LOGPIPE_KAFKA_USERNAME / LOGPIPE_KAFKA_PASSWORD (`sasl` option: plain|scram-sha-256|scram-sha-512),
never from the URL, and are never printed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar, Final
from urllib.parse import parse_qs, urlsplit

from logpipe.errors import UsageError
from logpipe.options import whole
from logpipe.schema import COLUMN_NAMES
from logpipe.secrets import SinkSettings

SCHEMES: Final = ("kafka", "kafka+ssl")
MODES: Final = ("record", "batch")
COMPRESSIONS: Final = ("zstd", "lz4", "gzip", "snappy", "none")
SASL: Final = {"plain": "PLAIN", "scram-sha-256": "SCRAM-SHA-256", "scram-sha-512": "SCRAM-SHA-512"}
_OPTIONS: Final = {"mode", "key", "compression", "linger_ms", "batch_bytes", "batch_records", "group", "ca", "sasl"}


@dataclass(frozen=True, slots=True, repr=False)
class KafkaConfig(SinkSettings):
    """Where the brokers are, the topic, and how records become messages; the SASL password stays out of repr."""

    KIND: ClassVar[str] = "kafka"
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("password",)

    bootstrap: str
    topic: str
    tls: bool = False
    mode: str = "record"
    key: str | None = "request_id"
    compression: str | None = "zstd"
    linger_ms: int = 20
    batch_bytes: int = 1 << 20
    batch_records: int = 1000
    group: str | None = None
    ca_file: str | None = None
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = None

    @property
    def max_request_size(self) -> int:
        """The largest produce request (and so message) the producer sends: room for a full batch
        of `batch_bytes` and then some; a message over it is dead-lettered without being sent."""
        return max(self.batch_bytes, 1 << 20) * 4

    @property
    def display_url(self) -> str:
        """The target without credentials, for messages and summaries."""
        return f"{'kafka+ssl' if self.tls else 'kafka'}://{self.bootstrap}/{self.topic}"

    def client_kwargs(self) -> dict[str, object]:
        """Connection settings shared by aiokafka producers and consumers."""
        kwargs: dict[str, object] = {"bootstrap_servers": self.bootstrap.split(",")}
        protocol = "SSL" if self.tls else "PLAINTEXT"
        if self.tls:
            import ssl

            kwargs["ssl_context"] = ssl.create_default_context(cafile=self.ca_file)
        if self.sasl_mechanism:
            protocol = "SASL_SSL" if self.tls else "SASL_PLAINTEXT"
            kwargs.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        kwargs["security_protocol"] = protocol
        return kwargs


def parse_kafka_url(url: str) -> KafkaConfig:
    """Parse and validate a kafka:// URL (credentials come from the environment only)."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise UsageError(f"expected kafka://HOST:PORT/TOPIC, got scheme {parts.scheme!r}")
    if parts.username or parts.password:
        raise UsageError("put Kafka credentials in LOGPIPE_KAFKA_USERNAME/LOGPIPE_KAFKA_PASSWORD, not in the URL")
    bootstrap = parts.netloc
    topic = parts.path.strip("/")
    if not bootstrap or not topic or "/" in topic:
        raise UsageError(f"expected kafka://HOST:PORT/TOPIC, got {url.split('?')[0]!r}")
    raw = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(raw) - _OPTIONS
    if unknown:
        raise UsageError(f"unknown kafka option(s): {', '.join(sorted(unknown))}")
    options = {k: v[-1] for k, v in raw.items()}
    mode = options.get("mode", "record")
    if mode not in MODES:
        raise UsageError(f"kafka mode must be one of {', '.join(MODES)}")
    key: str | None = options.get("key", "request_id")
    if key == "none":
        key = None
    elif key not in COLUMN_NAMES:
        raise UsageError(f"kafka key must be a canonical column or 'none', got {key!r}")
    compression = options.get("compression", "zstd")
    if compression not in COMPRESSIONS:
        raise UsageError(f"kafka compression must be one of {', '.join(COMPRESSIONS)}")
    sasl = options.get("sasl")
    if sasl is not None and sasl not in SASL:
        raise UsageError(f"kafka sasl must be one of {', '.join(SASL)}")
    return KafkaConfig(
        bootstrap=bootstrap,
        topic=topic,
        tls=parts.scheme == "kafka+ssl",
        mode=mode,
        key=key,
        compression=None if compression == "none" else compression,
        linger_ms=whole(options.get("linger_ms", "20"), "linger_ms", 0, what="kafka option"),
        batch_bytes=whole(options.get("batch_bytes", str(1 << 20)), "batch_bytes", 1024, what="kafka option"),
        batch_records=whole(options.get("batch_records", "1000"), "batch_records", 1, what="kafka option"),
        group=options.get("group") or None,
        ca_file=options.get("ca"),
        sasl_mechanism=SASL[sasl] if sasl else None,
        username=os.environ.get("LOGPIPE_KAFKA_USERNAME") if sasl else None,
        password=os.environ.get("LOGPIPE_KAFKA_PASSWORD") if sasl else None,
    )


def parse(url: str) -> KafkaConfig:
    """The registry's entry: `parse_kafka_url`."""
    return parse_kafka_url(url)
