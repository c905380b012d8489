"""Settings of the Loki sink, from a `--to loki://…` URL and the environment.

    loki://HOST:PORT                    plain HTTP (port 3100 when none is given)
    loki+https://HOST:PORT              TLS (also `loki://…?tls=true`)
    loki://USER:PASSWORD@HOST:PORT      basic auth (better: LOGPIPE_LOKI_USER/LOGPIPE_LOKI_PASSWORD)
    …?token=TOKEN                       bearer token (better: LOGPIPE_LOKI_TOKEN)
    …?tenant=T1                         `X-Scope-OrgID` (also LOGPIPE_LOKI_TENANT)
    …?encoding=protobuf|json&gzip=true  snappy-compressed protobuf (default) or JSON, gzipped or not
    …?labels=service,level,host,env     stream labels; everything else is metadata or the line
    …?metadata=request_id,user_id,…     structured metadata fields
    …?line=json|message                 the line: the whole record as JSON (default), or the message
    …?label_limit=500                   distinct values a label may take before it is demoted
    …?path=/loki/api/v1/push            push path (VictoriaLogs: /insert/loki/api/v1/push)
    …?batch_kb=1024&batch_entries=10000&retry_for=0&max_backoff=30&timeout=30

Secrets come from the URL or the environment; they are kept out of `repr` and `display_url`,
and `mask` scrubs them from any text that may be shown (a proxy's error page can echo a header).
Everything is checked here, so a typo or a per-request label fails at start-up, not in the
middle of the night.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from logpipe.errors import UsageError
from logpipe.options import choice, flag, whole
from logpipe.schema import STRING_COLUMNS
from logpipe.secrets import SinkSettings

ENV_USER: Final = "LOGPIPE_LOKI_USER"
ENV_PASSWORD: Final = "LOGPIPE_LOKI_PASSWORD"
ENV_TOKEN: Final = "LOGPIPE_LOKI_TOKEN"
ENV_TENANT: Final = "LOGPIPE_LOKI_TENANT"

SCHEMES: Final = {"loki": "http", "loki+http": "http", "loki+https": "https"}
DEFAULT_PORT: Final = 3100
DEFAULT_PATH: Final = "/loki/api/v1/push"
DEFAULT_LABELS: Final = ("service", "level", "host", "env")
DEFAULT_METADATA: Final = ("request_id", "user_id", "session_id", "endpoint", "trace_id")
ENCODINGS: Final = ("protobuf", "json")
LINE_MODES: Final = ("json", "message")
# Record fields that may be a label or metadata: the canonical string columns but the line itself
# (`message`) and `attrs` (its keys are named instead), plus `status`, a number with few values;
# and any top-level key of `attrs` named `attrs.KEY` or by a bare name that is not a column (env, region, …).
COLUMN_FIELDS: Final = frozenset({*STRING_COLUMNS, "status"} - {"message", "attrs"})
# One value per request, user or line: as a label each would make a stream per value.
PER_REQUEST_FIELDS: Final = frozenset(
    {
        "request_id",
        "user_id",
        "session_id",
        "trace_id",
        "event_id",
        "path",
        "message",
        "error",
        "offset",
        "ts",
        "duration_ms",
        "span_id",
    }
)
_LABEL_NAME_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True, repr=False)
class LokiConfig(SinkSettings):
    """Where Loki is, how to talk to it and how records become streams; secrets stay out of repr."""

    KIND: ClassVar[str] = "loki"
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("password", "token")

    url: str  # scheme://host:port, no path
    path: str = DEFAULT_PATH
    username: str | None = None
    password: str | None = None
    token: str | None = None
    tenant: str | None = None
    encoding: str = "protobuf"
    gzip: bool = False
    labels: tuple[str, ...] = DEFAULT_LABELS
    metadata: tuple[str, ...] = DEFAULT_METADATA
    line: str = "json"
    label_limit: int = 500
    batch_bytes: int = 1 << 20
    batch_entries: int = 10_000
    retry_for_s: float = 0.0  # 0: retry until Loki takes the batch (the agent just stops reading)
    max_backoff_s: float = 30.0
    timeout_s: float = 30.0

    @property
    def display_url(self) -> str:
        """The push URL without credentials: safe for logs and error messages."""
        return f"{self.url}{self.path}"

    def headers(self) -> dict[str, str]:
        """Request headers: content type and encoding, auth, tenant."""
        import base64

        headers = {
            "Content-Type": "application/x-protobuf" if self.encoding == "protobuf" else "application/json",
            "User-Agent": "logpipe",
        }
        if self.encoding == "json" and self.gzip:
            headers["Content-Encoding"] = "gzip"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        elif self.username:
            pair = f"{self.username}:{self.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        if self.tenant:
            headers["X-Scope-OrgID"] = self.tenant
        return headers


OPTION_KEYS: Final = frozenset(
    {
        "tls",
        "token",
        "tenant",
        "encoding",
        "gzip",
        "labels",
        "metadata",
        "line",
        "label_limit",
        "path",
        "batch_kb",
        "batch_entries",
        "retry_for",
        "max_backoff",
        "timeout",
    }
)


def parse_loki_target(target: str, env: Mapping[str, str] | None = None) -> LokiConfig:
    """`loki://user:pw@host:3100?tenant=t1&encoding=json` (plus LOGPIPE_LOKI_*) -> LokiConfig."""
    environ = os.environ if env is None else env
    parts = urlsplit(target)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UsageError(f"Loki URL must start with loki:// or loki+https:// (got {safe_url(target)!r})")
    if not parts.hostname:
        raise UsageError(f"Loki URL has no host: {safe_url(target)!r}")
    if parts.path not in ("", "/"):
        raise UsageError(f"Loki URL: give the push path as ?path=… (got path {parts.path!r})")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - OPTION_KEYS)
    if unknown:
        raise UsageError(f"unknown Loki URL option {unknown[0]!r} (known: {', '.join(sorted(OPTION_KEYS))})")
    tls = SCHEMES[scheme] == "https" or flag(options.get("tls", "false"), "tls", what="Loki option")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    username = unquote(parts.username) if parts.username else environ.get(ENV_USER) or None
    password = unquote(parts.password) if parts.password else environ.get(ENV_PASSWORD) or None
    if username and not password:
        raise UsageError(f"Loki user {username!r} has no password (set {ENV_PASSWORD})")
    labels = _names(options.get("labels"), DEFAULT_LABELS, "labels")
    metadata = tuple(m for m in _names(options.get("metadata"), DEFAULT_METADATA, "metadata") if m not in labels)
    check_labels(labels)
    config = LokiConfig(
        url=f"{'https' if tls else 'http'}://{host}:{parts.port or DEFAULT_PORT}",
        path=_path(options.get("path", DEFAULT_PATH)),
        username=username,
        password=password,
        token=options.get("token") or environ.get(ENV_TOKEN) or None,
        tenant=options.get("tenant") or environ.get(ENV_TENANT) or None,
        encoding=choice(options.get("encoding", "protobuf"), ENCODINGS, "encoding", what="Loki option"),
        gzip=flag(options.get("gzip", "false"), "gzip", what="Loki option"),
        labels=labels,
        metadata=metadata,
        line=choice(options.get("line", "json"), LINE_MODES, "line", what="Loki option"),
        label_limit=whole(options.get("label_limit", "500"), "label_limit", 1, what="Loki option"),
        batch_bytes=whole(options.get("batch_kb", "1024"), "batch_kb", 1, what="Loki option") << 10,
        batch_entries=whole(options.get("batch_entries", "10000"), "batch_entries", 1, what="Loki option"),
        retry_for_s=float(whole(options.get("retry_for", "0"), "retry_for", 0, what="Loki option")),
        max_backoff_s=float(whole(options.get("max_backoff", "30"), "max_backoff", 1, what="Loki option")),
        timeout_s=float(whole(options.get("timeout", "30"), "timeout", 1, what="Loki option")),
    )
    if config.gzip and config.encoding != "json":
        raise UsageError("Loki option gzip=true applies to encoding=json (protobuf is always snappy-compressed)")
    return config


def parse(url: str) -> LokiConfig:
    """The registry's entry: `parse_loki_target` with the process environment."""
    return parse_loki_target(url)


def check_labels(labels: tuple[str, ...]) -> None:
    """Refuse label sets that would break Loki: bad names, per-request fields, no `level`.

    `level` is required because Loki's per-stream retention (`retention_stream` selectors like
    `{level="debug"}`) can only key on a stream label.
    """
    for name in labels:
        if not _LABEL_NAME_RE.match(name.removeprefix("attrs.")):
            raise UsageError(f"Loki label {name!r} is not a valid label name ([A-Za-z_][A-Za-z0-9_]*)")
        if name in PER_REQUEST_FIELDS:
            raise UsageError(
                f"Loki label {name!r} takes a new value on (nearly) every request, and every value is a "
                f"new stream: too many streams breaks Loki. Send it as structured metadata instead "
                f"(?metadata=…,{name})"
            )
    if "level" not in labels:
        raise UsageError("Loki labels must include 'level': per-level retention selects streams by it")
    if len(set(labels)) != len(labels):
        raise UsageError(f"Loki labels name a field twice: {','.join(labels)}")


def label_name(field_name: str) -> str:
    """The name a field has in Loki: `attrs.env` is sent as `env`."""
    return field_name.removeprefix("attrs.")


def safe_url(target: str) -> str:
    """A URL as typed, with any password or token replaced, for error messages."""
    parts = urlsplit(target)
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", ":***@")
    query = re.sub(r"(token=)[^&]*", r"\1***", parts.query)
    return parts._replace(netloc=netloc, query=query).geturl()


def _names(text: str | None, default: tuple[str, ...], option: str) -> tuple[str, ...]:
    if text is None:
        return default
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for name in names:
        if name in ("ts", "message", "attrs"):
            raise UsageError(f"Loki option {option}: {name!r} cannot be a label or metadata field")
    return names


def _path(text: str) -> str:
    if not text.startswith("/"):
        raise UsageError(f"Loki option path must start with '/', not {text!r}")
    return text
