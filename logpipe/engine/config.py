"""Settings of the Elasticsearch/OpenSearch sink and query backend, from a `--to`/`--es` URL.

    es://HOST:PORT                      plain HTTP
    es+https://HOST:PORT                TLS (also `https://`, `http://`, or `es://...?tls=true`)
    es://USER:PASSWORD@HOST:PORT        basic auth (better: LOGPIPE_ES_USER/LOGPIPE_ES_PASSWORD)
    ...?api_key=KEY                     API key (better: LOGPIPE_ES_API_KEY)
    ...?ca=/path/ca.pem&verify=false    CA file; verification switch
    ...?index=logs-{service}-{level}-{date}&replicas=0&concurrency=2&retry_for=0

Secrets come from the URL or the environment; they are kept out of `repr`, out of
`display_url`, and `mask` scrubs them from any text that might be shown (an engine's error
message can echo a header). The index pattern is checked here, so a typo fails at start-up.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from logpipe.errors import UsageError
from logpipe.options import flag, whole
from logpipe.secrets import SinkSettings

ENV_USER: Final = "LOGPIPE_ES_USER"
ENV_PASSWORD: Final = "LOGPIPE_ES_PASSWORD"
ENV_API_KEY: Final = "LOGPIPE_ES_API_KEY"
ENV_CA: Final = "LOGPIPE_ES_CA"
ENV_VERIFY: Final = "LOGPIPE_ES_VERIFY"

DEFAULT_INDEX: Final = "logs-{service}-{level}-{date}"
DEFAULT_DATE_FORMAT: Final = "%Y.%m.%d"
SCHEMES: Final = {"es": "http", "http": "http", "es+http": "http", "es+https": "https", "https": "https"}
# Fields an index pattern may name: string columns of the canonical record, and the record's day.
INDEX_FIELDS: Final = frozenset({"service", "level", "host", "logger", "method", "source"}) | {"date"}
_PLACEHOLDER_RE: Final = re.compile(r"\{([^{}]*)\}")
_LITERAL_RE: Final = re.compile(r"^[a-z0-9_.+-]*$")


@dataclass(frozen=True, slots=True, repr=False)
class EsConfig(SinkSettings):
    """Where the engine is and how to talk to it; secrets are never part of the repr."""

    KIND: ClassVar[str] = "elasticsearch"
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("password", "api_key")

    url: str
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    ca_file: Path | None = None
    verify: bool = True
    index: str = DEFAULT_INDEX
    date_format: str = DEFAULT_DATE_FORMAT
    template_name: str = "logpipe-logs"
    shards: int = 1
    replicas: int | None = None
    gzip: bool = True
    concurrency: int = 2
    chunk_bytes: int = 4 << 20
    retry_for_s: float = 0.0  # 0: retry until the engine takes the items (the agent just stops reading)
    max_backoff_s: float = 10.0
    timeout_s: float = 60.0

    @property
    def display_url(self) -> str:
        """The URL without credentials: safe for logs and error messages."""
        return self.url

    @property
    def index_prefix(self) -> str:
        """The literal start of every index name this config writes (for templates and queries)."""
        return self.index.split("{", 1)[0]


def parse_target(target: str, env: Mapping[str, str] | None = None) -> EsConfig:
    """`es://user:pw@host:9200?index=...` (plus LOGPIPE_ES_* variables) -> EsConfig."""
    environ = os.environ if env is None else env
    parts = urlsplit(target)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UsageError(f"engine URL must start with es://, es+https://, http:// or https:// (got {_safe(target)!r})")
    if not parts.hostname:
        raise UsageError(f"engine URL has no host: {_safe(target)!r}")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - _OPTION_KEYS)
    if unknown:
        raise UsageError(f"unknown engine URL option {unknown[0]!r} (known: {', '.join(sorted(_OPTION_KEYS))})")
    tls = SCHEMES[scheme] == "https" or flag(options.pop("tls", "false"), "tls", what="engine option")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    port = parts.port or 9200
    path = parts.path.rstrip("/")
    config = EsConfig(
        url=f"{'https' if tls else 'http'}://{host}:{port}{path}",
        username=unquote(parts.username) if parts.username else environ.get(ENV_USER) or None,
        password=unquote(parts.password) if parts.password else environ.get(ENV_PASSWORD) or None,
        api_key=options.pop("api_key", "") or environ.get(ENV_API_KEY) or None,
        ca_file=_ca(options.pop("ca", "") or environ.get(ENV_CA)),
        verify=flag(options.pop("verify", "") or environ.get(ENV_VERIFY) or "true", "verify", what="engine option"),
    )
    return _apply_options(config, options)


_OPTION_KEYS: Final = frozenset(
    {
        "tls",
        "api_key",
        "ca",
        "verify",
        "index",
        "date_format",
        "replicas",
        "shards",
        "concurrency",
        "chunk_mb",
        "retry_for",
        "gzip",
        "template",
    }
)


def _apply_options(config: EsConfig, options: dict[str, str]) -> EsConfig:
    changes: dict[str, object] = {}
    if "index" in options:
        changes["index"] = options["index"]
    if "date_format" in options:
        changes["date_format"] = options["date_format"]
    if "template" in options:
        changes["template_name"] = options["template"]
    if "replicas" in options:
        changes["replicas"] = whole(options["replicas"], "replicas", 0, what="engine option")
    if "shards" in options:
        changes["shards"] = whole(options["shards"], "shards", 1, what="engine option")
    if "concurrency" in options:
        changes["concurrency"] = whole(options["concurrency"], "concurrency", 1, what="engine option")
    if "chunk_mb" in options:
        changes["chunk_bytes"] = whole(options["chunk_mb"], "chunk_mb", 1, what="engine option") << 20
    if "retry_for" in options:
        changes["retry_for_s"] = float(whole(options["retry_for"], "retry_for", 0, what="engine option"))
    if "gzip" in options:
        changes["gzip"] = flag(options["gzip"], "gzip", what="engine option")
    config = replace(config, **changes)  # type: ignore[arg-type]
    check_index_pattern(config.index)
    if config.username and not config.password:
        raise UsageError(f"engine user {config.username!r} has no password (set {ENV_PASSWORD})")
    return config


def check_index_pattern(pattern: str) -> list[tuple[str, str]]:
    """`logs-{service}-{date}` -> [("text", "logs-"), ("field", "service"), ...]; bad ones fail."""
    parts: list[tuple[str, str]] = []
    pos = 0
    for match in _PLACEHOLDER_RE.finditer(pattern):
        parts.append(("text", pattern[pos : match.start()]))
        name = match.group(1)
        if name not in INDEX_FIELDS:
            raise UsageError(
                f"index pattern {pattern!r}: unknown field {{{name}}} (known: {', '.join(sorted(INDEX_FIELDS))})"
            )
        parts.append(("field", name))
        pos = match.end()
    parts.append(("text", pattern[pos:]))
    parts = [p for p in parts if p[1]]
    literal = "".join(v for k, v in parts if k == "text")
    if not _LITERAL_RE.match(literal) or "{" in literal or "}" in literal:
        raise UsageError(f"index pattern {pattern!r}: literal parts must be lower-case letters, digits, . _ - +")
    if not parts or parts[0][0] != "text" or parts[0][1][0] in "-_+.":
        raise UsageError(f"index pattern {pattern!r} must start with a literal prefix such as 'logs-'")
    return parts


def _ca(path: str | None) -> Path | None:
    if not path:
        return None
    ca = Path(path).expanduser()
    if not ca.is_file():
        raise UsageError(f"CA file {ca} does not exist")
    return ca


def _safe(target: str) -> str:
    """A URL as typed, with any password or api_key replaced, for error messages."""
    parts = urlsplit(target)
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", ":***@")
    query = re.sub(r"(api_key=)[^&]*", r"\1***", parts.query)
    return parts._replace(netloc=netloc, query=query).geturl()
