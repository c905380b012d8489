"""Settings of the Elasticsearch/OpenSearch sink and query backend, from a `--to`/`--es` URL.

    es://HOST:PORT                      plain HTTP
    es+https://HOST:PORT                TLS (also `https://`, `http://`, or `es://...?tls=true`)
    es://USER:PASSWORD@HOST:PORT        basic auth (better: LOGPIPE_ES_USER/LOGPIPE_ES_PASSWORD)
    ...?api_key=KEY                     API key (better: LOGPIPE_ES_API_KEY)
    ...?ca=/path/ca.pem&verify=false    CA file; verification switch
    ...?index=logs-{service}-{level}-{date}&replicas=0&concurrency=2&retry_for=300

Secrets come from the URL or the environment; they are kept out of `repr`, out of
`display_url`, and `mask` scrubs them from any text that might be shown (an engine's error
message can echo a header). The index pattern is checked here, so a typo fails at start-up.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

from logpipe.errors import UsageError

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
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class EsConfig:
    """Where the engine is and how to talk to it; secrets are never part of the repr."""

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
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
    retry_for_s: float = 300.0
    max_backoff_s: float = 10.0
    timeout_s: float = 60.0

    @property
    def display_url(self) -> str:
        """The URL without credentials: safe for logs and error messages."""
        return self.url

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.password, self.api_key) if s)

    def mask(self, text: str) -> str:
        """`text` with every secret replaced by `***`."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

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
    tls = SCHEMES[scheme] == "https" or _flag(options.pop("tls", "false"), "tls")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    port = parts.port or 9200
    path = parts.path.rstrip("/")
    config = EsConfig(
        url=f"{'https' if tls else 'http'}://{host}:{port}{path}",
        username=unquote(parts.username) if parts.username else environ.get(ENV_USER) or None,
        password=unquote(parts.password) if parts.password else environ.get(ENV_PASSWORD) or None,
        api_key=options.pop("api_key", "") or environ.get(ENV_API_KEY) or None,
        ca_file=_ca(options.pop("ca", "") or environ.get(ENV_CA)),
        verify=_flag(options.pop("verify", "") or environ.get(ENV_VERIFY) or "true", "verify"),
    )
    return _apply_options(config, options)


_OPTION_KEYS: Final = frozenset(
    {"tls", "api_key", "ca", "verify", "index", "date_format", "replicas", "shards", "concurrency",
     "chunk_mb", "retry_for", "gzip", "template"}
)  # fmt: skip


def _apply_options(config: EsConfig, options: dict[str, str]) -> EsConfig:
    changes: dict[str, object] = {}
    if "index" in options:
        changes["index"] = options["index"]
    if "date_format" in options:
        changes["date_format"] = options["date_format"]
    if "template" in options:
        changes["template_name"] = options["template"]
    if "replicas" in options:
        changes["replicas"] = _int(options["replicas"], "replicas", 0)
    if "shards" in options:
        changes["shards"] = _int(options["shards"], "shards", 1)
    if "concurrency" in options:
        changes["concurrency"] = _int(options["concurrency"], "concurrency", 1)
    if "chunk_mb" in options:
        changes["chunk_bytes"] = _int(options["chunk_mb"], "chunk_mb", 1) << 20
    if "retry_for" in options:
        changes["retry_for_s"] = float(_int(options["retry_for"], "retry_for", 0))
    if "gzip" in options:
        changes["gzip"] = _flag(options["gzip"], "gzip")
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
            raise UsageError(f"index pattern {pattern!r}: unknown field {{{name}}} (known: {', '.join(sorted(INDEX_FIELDS))})")
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


def _flag(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE | _FALSE:
        return value in _TRUE
    raise UsageError(f"engine option {name} expects true or false, not {text!r}")


def _int(text: str, name: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"engine option {name} expects a whole number, not {text!r}") from None
    if value < minimum:
        raise UsageError(f"engine option {name} must be at least {minimum}")
    return value


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
