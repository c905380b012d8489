"""Elasticsearch and OpenSearch read and cleaned with the standard library (independent of the
code under test). Every test works on an index prefix of its own, so tests never see each
other's documents."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from typing import Any

from tests.support.services import url


def http(method: str, address: str, body: Any = None, ndjson: str | None = None) -> tuple[int, Any]:
    """One JSON (or NDJSON) request; (status, parsed body). 4xx/5xx answers are returned, not raised."""
    data = ndjson.encode() if ndjson is not None else (json.dumps(body).encode() if body is not None else None)
    ctype = "application/x-ndjson" if ndjson is not None else "application/json"
    request = urllib.request.Request(address, data=data, method=method, headers={"content-type": ctype})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


def wipe(address: str, prefix: str) -> None:
    """Delete every index and the template of one test prefix (names resolved first: ES refuses wildcards)."""
    status, indices = http("GET", f"{address}/_cat/indices/{prefix}*?format=json")
    assert status == 200, indices
    for index in indices or []:
        http("DELETE", f"{address}/{index['index']}")
    http("DELETE", f"{address}/_index_template/{prefix}template")


def count(address: str, prefix: str) -> int:
    http("POST", f"{address}/{prefix}*/_refresh")
    status, body = http("GET", f"{address}/{prefix}*/_count")
    assert status == 200, body
    return int(body["count"])


def all_sources(address: str, prefix: str) -> list[dict[str, Any]]:
    """Every document of a prefix, paged with search_after (independent of logpipe's reader)."""
    http("POST", f"{address}/{prefix}*/_refresh")
    out: list[dict[str, Any]] = []
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {"size": 5000, "sort": [{"event_id": "asc"}]}
        if after:
            body["search_after"] = after
        status, page = http("POST", f"{address}/{prefix}*/_search", body)
        assert status == 200, page
        hits = page["hits"]["hits"]
        if not hits:
            return out
        out.extend({"_id": h["_id"], "_index": h["_index"], **h["_source"]} for h in hits)
        after = hits[-1]["sort"]


def target(engine: str, prefix: str, **options: str) -> str:
    """A `--to` URL for `engine` writing indices `PREFIX{service}-{level}-{date}`."""
    host = url(engine).split("://", 1)[1]
    query = {"index": prefix + "{service}-{level}-{date}", "template": prefix + "template", "replicas": "0", **options}
    return f"es://{host}?" + "&".join(f"{k}={v}" for k, v in query.items())


def make_prefix(name: str) -> str:
    """An index prefix of one test's own: lower-case, and no prefix of another test's (the hash),
    so the per-prefix index templates never overlap."""
    slug = "".join(c if c.isalnum() else "-" for c in name.lower())[:30].strip("-")
    return f"t-{slug}-{hashlib.sha1(name.encode()).hexdigest()[:6]}-"
