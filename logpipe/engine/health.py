"""Which engine answers at a URL, and whether it is up: `GET /` decides, before any client.

OpenSearch says `version.distribution: opensearch`. Elasticsearch marks every response with
`X-Elastic-Product: Elasticsearch`, which also identifies builds whose `GET /` is not served
(the integ-test distribution answers 405); their version then comes from `GET /_nodes/_local`.
The probe uses urllib3 directly, so the official clients' own product checks never get in the
way of telling the two apart.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from logpipe.errors import TerminalError, TransientError

if TYPE_CHECKING:
    import urllib3

    from logpipe.engine.config import EsConfig

OPENSEARCH: Final = "opensearch"
ELASTICSEARCH: Final = "elasticsearch"


@dataclass(frozen=True, slots=True)
class EngineInfo:
    kind: str  # OPENSEARCH or ELASTICSEARCH
    version: str

    @property
    def major(self) -> int:
        head = self.version.split(".", 1)[0]
        return int(head) if head.isdigit() else 0

    def describe(self) -> str:
        return f"{'OpenSearch' if self.kind == OPENSEARCH else 'Elasticsearch'} {self.version}"


def auth_headers(config: EsConfig) -> dict[str, str]:
    """The Authorization header for basic auth or an API key (API key wins if both are set)."""
    if config.api_key:
        return {"authorization": f"ApiKey {config.api_key}"}
    if config.username:
        token = base64.b64encode(f"{config.username}:{config.password or ''}".encode()).decode()
        return {"authorization": f"Basic {token}"}
    return {}


def classify(status: int, headers: dict[str, str], body: Any) -> str | None:
    """The engine kind from one `GET /` answer, or None if it is neither (a proxy, a web page)."""
    version = body.get("version") if isinstance(body, dict) else None
    if isinstance(version, dict) and version.get("distribution") == OPENSEARCH:
        return OPENSEARCH
    if headers.get("x-elastic-product", "").lower() == ELASTICSEARCH:
        return ELASTICSEARCH
    if status == 200 and isinstance(version, dict) and "number" in version and "distribution" not in version:
        return ELASTICSEARCH  # Elasticsearch before 7.14 sends no product header
    return None


def probe(config: EsConfig, *, timeout_s: float = 10.0) -> EngineInfo:
    """Ask the engine what it is; TransientError while it is down, TerminalError if it never will be."""
    from logpipe.deps import require

    require("Elasticsearch/OpenSearch support", "es", [("urllib3", "urllib3")])
    http = _pool(config)
    try:
        status, headers, body = _get(http, config, "/", timeout_s)
        if status in (401, 403):
            raise TerminalError(f"{config.display_url} rejected the credentials (HTTP {status})")
        kind = classify(status, headers, body)
        if kind is None:
            if status == 429 or status >= 500:
                raise TransientError(f"{config.display_url} answered HTTP {status}; not ready")
            raise TerminalError(f"{config.display_url} is neither Elasticsearch nor OpenSearch (HTTP {status})")
        version = body.get("version", {}).get("number") if isinstance(body, dict) else None
        if not version:
            _, _, nodes = _get(http, config, "/_nodes/_local?filter_path=nodes.*.version", timeout_s)
            found = [n.get("version") for n in (nodes or {}).get("nodes", {}).values()]
            version = found[0] if found else "unknown"
        return EngineInfo(kind, str(version))
    finally:
        http.clear()


def _pool(config: EsConfig) -> urllib3.PoolManager:
    import urllib3

    if config.url.startswith("https://"):
        return urllib3.PoolManager(
            cert_reqs="CERT_REQUIRED" if config.verify else "CERT_NONE",
            ca_certs=str(config.ca_file) if config.ca_file else None,
        )
    return urllib3.PoolManager()


def _get(http: urllib3.PoolManager, config: EsConfig, path: str, timeout_s: float) -> tuple[int, dict[str, str], Any]:
    import urllib3

    if not config.verify:
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    try:
        response = http.request(
            "GET",
            config.url + path,
            headers={"accept": "application/json", **auth_headers(config)},
            timeout=timeout_s,
            retries=False,
        )
    except urllib3.exceptions.SSLError as exc:
        raise TerminalError(f"TLS with {config.display_url} failed: {config.mask(str(exc))}") from None
    except urllib3.exceptions.HTTPError as exc:
        raise TransientError(f"cannot reach {config.display_url}: {config.mask(_reason(exc))}") from None
    headers = {k.lower(): v for k, v in response.headers.items()}
    try:
        body = json.loads(response.data) if response.data else None
    except ValueError:
        body = None
    return response.status, headers, body


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc).split(": ", 1)[-1]
