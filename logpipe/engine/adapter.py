"""One small interface over the two official clients: `elasticsearch` (8.x) and `opensearch-py`.

The 8.x Elasticsearch client refuses OpenSearch, and opensearch-py does not speak every
Elasticsearch API, so `connect` probes the engine (`health.probe`) and wraps the matching
client. Everything above this module sees `EngineClient`: bulk with a ready NDJSON body, and
JSON requests by method and path. Client errors become logpipe's: `EngineUnavailable`
(transient: down, timed out, 429, 5xx) or TerminalError (anything a retry cannot fix), with
secrets masked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from logpipe.engine.health import ELASTICSEARCH, EngineInfo, auth_headers, probe
from logpipe.errors import MissingDependencyError, TerminalError, TransientError

if TYPE_CHECKING:
    from logpipe.engine.config import EsConfig

BULK_FILTER: Final = "errors,items.*.status,items.*.error.type,items.*.error.reason"
# What the [es] extra installs. Both clients are required: which one talks to the engine is
# known only once it answers, and the check must fail at start-up, before any input is read.
CLIENT_MODULES: Final = (("urllib3", "urllib3"), ("elasticsearch", "elasticsearch"), ("opensearchpy", "opensearch-py"))
_JSON: Final = {"accept": "application/json", "content-type": "application/json"}


class EngineUnavailable(TransientError):
    """The engine did not answer, or answered 429/5xx for the whole request: try again later."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EngineClient:
    """Bulk and JSON requests against one engine, whichever client talks to it."""

    def __init__(self, config: EsConfig, info: EngineInfo, raw: Any, call: Callable[..., Any]) -> None:
        self.config = config
        self.info = info
        self._raw = raw
        self._call = call

    @property
    def kind(self) -> str:
        return self.info.kind

    def bulk(self, body: bytes) -> dict[str, Any]:
        """POST /_bulk with an NDJSON body; the answer holds only statuses and errors."""
        with self._errors("bulk"):
            return dict(self._call("bulk", body))

    def request(self, method: str, path: str, body: Any = None, *, ok_missing: bool = False) -> dict[str, Any]:
        """One JSON request; with `ok_missing`, a 404 is an empty answer instead of an error."""
        with self._errors(f"{method} {path}", ok_missing=ok_missing):
            result = self._call("request", method, path, body)
            return result if isinstance(result, dict) else {"result": result}
        return {}

    def close(self) -> None:
        self._raw.close()

    @contextmanager
    def _errors(self, what: str, *, ok_missing: bool = False) -> Iterator[None]:
        status: int | None
        try:
            yield
        except Exception as exc:
            status, message = _describe(exc)
            if status == 404 and ok_missing:
                return
            text = self.config.mask(f"{self.config.display_url} {what}: {message}")
            if status is None or status == 429 or status >= 500:
                raise EngineUnavailable(text, status) from None
            raise TerminalError(text) from None


def require_clients() -> None:
    """MissingDependencyError with the pip command unless the [es] extra is installed."""
    from logpipe.deps import require

    require("Elasticsearch/OpenSearch support", "es", CLIENT_MODULES)


def connect(config: EsConfig, info: EngineInfo | None = None) -> EngineClient:
    """Probe the engine (unless `info` is known) and open the matching client."""
    require_clients()
    info = info or probe(config)
    if info.kind == ELASTICSEARCH:
        return _elasticsearch(config, info)
    return _opensearch(config, info)


def _common_tls(config: EsConfig) -> dict[str, Any]:
    if not config.url.startswith("https://"):
        return {}
    options: dict[str, Any] = {"verify_certs": config.verify}
    if config.ca_file:
        options["ca_certs"] = str(config.ca_file)
    if not config.verify:
        options["ssl_show_warn"] = False
    return options


def _elasticsearch(config: EsConfig, info: EngineInfo) -> EngineClient:
    try:
        from elasticsearch import Elasticsearch
    except ImportError:
        raise MissingDependencyError("Elasticsearch support needs: pip install 'logpipe[es]'") from None
    auth: dict[str, Any] = {}
    if config.api_key:
        auth["api_key"] = config.api_key
    elif config.username:
        auth["basic_auth"] = (config.username, config.password or "")
    client = Elasticsearch(
        config.url,
        http_compress=config.gzip,
        request_timeout=config.timeout_s,
        max_retries=0,
        retry_on_timeout=False,
        connections_per_node=config.concurrency + 2,
        **auth,
        **_common_tls(config),
    )

    def call(op: str, *args: Any) -> Any:
        if op == "bulk":
            return client.bulk(operations=args[0], filter_path=BULK_FILTER).body
        method, path, body = args
        return client.perform_request(method, path, headers=_JSON, body=body).body

    return EngineClient(config, info, client, call)


def _opensearch(config: EsConfig, info: EngineInfo) -> EngineClient:
    try:
        from opensearchpy import OpenSearch
    except ImportError:
        raise MissingDependencyError("OpenSearch support needs: pip install 'logpipe[es]'") from None
    client = OpenSearch(
        [config.url],
        http_compress=config.gzip,
        timeout=config.timeout_s,
        max_retries=0,
        retry_on_timeout=False,
        pool_maxsize=config.concurrency + 2,
        headers=auth_headers(config),
        use_ssl=config.url.startswith("https://"),
        **_common_tls(config),
    )

    def call(op: str, *args: Any) -> Any:
        if op == "bulk":
            return client.bulk(body=args[0], params={"filter_path": BULK_FILTER})
        method, path, body = args
        return client.transport.perform_request(method, path, body=body)

    return EngineClient(config, info, client, call)


def _describe(exc: Exception) -> tuple[int | None, str]:
    """HTTP status (None: no answer at all) and a one-line reason, from either client's error."""
    meta = getattr(exc, "meta", None)
    status = getattr(meta, "status", None)
    if status is None:
        code = getattr(exc, "status_code", None)
        status = code if isinstance(code, int) else None
    info = getattr(exc, "info", None) or getattr(exc, "body", None)
    reason = _reason_of(info) or str(getattr(exc, "message", "") or exc)
    if status is None and type(exc).__name__ not in (
        "ConnectionError",
        "ConnectionTimeout",
        "TransportError",
        "SSLError",
    ):
        raise exc  # a programming error, not the engine's answer: let it surface unchanged
    if type(exc).__name__ == "SSLError":
        return 495, f"TLS failed: {reason}"
    return status, reason.splitlines()[0] if reason else type(exc).__name__


def _reason_of(info: Any) -> str:
    if isinstance(info, dict):
        error = info.get("error")
        if isinstance(error, dict):
            return f"{error.get('type', 'error')}: {error.get('reason', '')}"
        if isinstance(error, str):
            return error
    return ""
