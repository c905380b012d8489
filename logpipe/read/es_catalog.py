"""The Elasticsearch/OpenSearch query backend: the canned queries answered by the engine.

A query is `queries/es/NAME.json`, data not code:

    {"description": "...",
     "params": ["since: time = 1h -- start of the window", ...],   same syntax as the SQL header
     "columns": ["message_key", "count", ...],                      same columns as the SQL file
     "reader": "errors",                                            how responses become rows
     "searches": {"groups": {<search body>}, ...}}

Inside a search body, `{"$param": "name"}` is replaced by that parameter's value as a JSON
value (a time becomes an ISO 8601 string), structurally, never by pasting text; an element
`{"$if": "name", "then": X}` of a list becomes X when the parameter is set and disappears when
it is null. The reader (terms, composite, percentiles, date_histogram, top_hits; search_after
for journeys) pages through the engine's answers and returns rows with exactly the columns of
the DuckDB backend, so one formatter prints both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from logpipe.errors import UsageError
from logpipe.read.catalog import Param, bind, parse_param, query_dirs

if TYPE_CHECKING:
    from logpipe.engine.adapter import EngineClient
    from logpipe.engine.config import EsConfig

Rows = list[tuple[Any, ...]]
BUILTIN_DIR: Final = Path(__file__).resolve().parent / "es"
_REPO_DIR: Final = Path(__file__).resolve().parents[2] / "queries" / "es"
PAGE_LIMIT: Final = 10_000  # pages per search: a bound, not a budget anyone should reach


@dataclass(frozen=True, slots=True)
class EsQuery:
    name: str
    description: str
    params: tuple[Param, ...]
    columns: tuple[str, ...]
    reader: str
    searches: Mapping[str, Any]
    path: Path


# --- finding and parsing templates -----------------------------------------------------------


def es_dirs(user_dirs: str | Path | None = None) -> list[Path]:
    """User folders' `es/` siblings of their `sql/` folders (or the folders themselves), then built-ins."""
    dirs: list[Path] = []
    for folder in query_dirs(user_dirs):
        for candidate in (folder.parent / "es", folder):
            if candidate.is_dir() and any(candidate.glob("*.json")) and candidate not in dirs:
                dirs.append(candidate)
    for builtin in (BUILTIN_DIR, _REPO_DIR):
        if builtin.is_dir() and builtin not in dirs:
            dirs.append(builtin)
    return dirs


def get_es_query(name: str, user_dirs: str | Path | None = None) -> EsQuery:
    for folder in es_dirs(user_dirs):
        path = folder / f"{name}.json"
        if path.is_file():
            return parse_es_query(name, path.read_text(encoding="utf-8"), path)
    raise UsageError(f"query {name!r} has no Elasticsearch template (queries/es/{name}.json); use --backend archive")


def parse_es_query(name: str, text: str, path: Path) -> EsQuery:
    """Read one template; a missing key, an unknown reader or an undeclared `$param` names the file."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a template is a JSON object")
    missing = [k for k in ("description", "params", "columns", "reader", "searches") if k not in data]
    if missing:
        raise UsageError(f"{path}: template has no {missing[0]!r}")
    params = []
    for number, declaration in enumerate(data["params"], start=1):
        pname, sep, rest = str(declaration).partition(":")
        if not sep:
            raise UsageError(f"{path}: params[{number}] is `name: type [= default] [-- help]` ({declaration!r})")
        params.append(parse_param(pname.strip(), rest.strip(), f"{path}: params[{number}]"))
    if data["reader"] not in READERS:
        raise UsageError(f"{path}: unknown reader {data['reader']!r} (known: {', '.join(sorted(READERS))})")
    declared = {p.name for p in params} | DERIVED
    used = set(_params_used(data["searches"]))
    if used - declared:
        raise UsageError(f"{path}: template uses undeclared parameter(s) {', '.join(sorted(used - declared))}")
    return EsQuery(
        name, str(data["description"]), tuple(params), tuple(data["columns"]), data["reader"], data["searches"], path
    )


def _params_used(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key in ("$param", "$if"):
            if key in node:
                yield str(node[key])
        for value in node.values():
            yield from _params_used(value)
    elif isinstance(node, list):
        for value in node:
            yield from _params_used(value)


# --- substitution ----------------------------------------------------------------------------

# Values readers compute from the declared parameters (the histogram's interval) or from an
# earlier search (the journey's requests); templates may use them like parameters.
DERIVED: Final = frozenset({"bucket_interval", "bucket_offset", "matched_requests", "access_since", "access_until"})


def json_value(value: Any) -> Any:
    """A bound parameter as the engine reads it: times as ISO 8601 UTC with microseconds."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def substitute(node: Any, values: Mapping[str, Any]) -> Any:
    """The template with parameters in place (see the module docstring); the input is not changed."""
    if isinstance(node, dict):
        if set(node) == {"$param"}:
            return json_value(values[node["$param"]])
        return {k: substitute(v, values) for k, v in node.items()}
    if isinstance(node, list):
        out = []
        for item in node:
            if isinstance(item, dict) and "$if" in item:
                if values.get(item["$if"]) is not None:
                    out.append(substitute(item["then"], values))
            else:
                out.append(substitute(item, values))
        return out
    return node


# --- running ---------------------------------------------------------------------------------


def prepare_es(
    name: str, given: Mapping[str, object], *, queries: str | Path | None = None, now: datetime | None = None
) -> tuple[EsQuery, dict[str, object]]:
    """The template and its bound values (same conversion rules as the SQL backend)."""
    from logpipe.read.catalog import Query
    from logpipe.read.timeexpr import utc_now

    query = get_es_query(name, queries)
    as_sql = Query(query.name, query.description, query.params, query.columns, "", query.path)
    return query, bind(as_sql, given, now=now or utc_now())


class Engine(Protocol):
    """What a template's searches need of the engine store: one search, and every hit of a
    search paged with search_after (`EngineStore.search` and `EngineStore.pages`)."""

    def search(self, body: Mapping[str, Any]) -> dict[str, Any]: ...

    def pages(self, body: Mapping[str, Any]) -> Iterator[dict[str, Any]]: ...


def fetch_rows_es(engine: Engine, query: EsQuery, values: Mapping[str, object]) -> tuple[tuple[str, ...], Rows]:
    """Column names and rows, like `archive_sql.fetch_rows` for the archive."""
    reader = READERS[query.reader]
    rows = reader(Searcher(engine, query), dict(values))
    return query.columns, rows


def open_client(config: EsConfig) -> EngineClient:
    from logpipe.engine.adapter import connect

    return connect(config)


class Searcher:
    """Runs one template's named searches against the engine, with paging helpers."""

    def __init__(self, engine: Engine, query: EsQuery) -> None:
        self.engine = engine
        self.query = query

    def search(self, name: str, values: Mapping[str, Any]) -> dict[str, Any]:
        return self.engine.search(substitute(self.query.searches[name], values))

    def composite(self, name: str, values: Mapping[str, Any], agg: str) -> Iterator[dict[str, Any]]:
        """Every bucket of composite aggregation `agg`, following `after_key` page by page."""
        after: dict[str, Any] | None = None
        for _ in range(PAGE_LIMIT):
            body = substitute(self.query.searches[name], values)
            if after is not None:
                body["aggs"][agg]["composite"]["after"] = after
            answer = self.engine.search(body).get("aggregations", {}).get(agg, {})
            buckets = answer.get("buckets", [])
            yield from buckets
            after = answer.get("after_key")
            if not buckets or after is None:
                return

    def hits(self, name: str, values: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Every hit of search `name` in its sort order (the store pages with search_after)."""
        return self.engine.pages(substitute(self.query.searches[name], values))


# --- readers: engine answers -> rows with the SQL backend's columns --------------------------


def parse_ts(text: str | None) -> datetime | None:
    """`2026-01-02T03:04:05.123456Z` (as the sink writes `ts`) -> aware UTC datetime."""
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def top_values(buckets: list[dict[str, Any]]) -> str:
    """The three most frequent values as `value (count), ...`, like the SQL's string_agg."""
    return ", ".join(f"{b['key']} ({b['doc_count']})" for b in buckets[:3])


def read_errors(searcher: Searcher, values: dict[str, Any]) -> Rows:
    """Groups, then each group's endpoints: an error line's own, or else its request's access line's
    (the request's last record with an endpoint within a day either side of the window), as the SQL."""
    endpoints = _error_endpoints(searcher, values)
    rows = []
    for bucket in searcher.composite("groups", values, "groups"):
        first = bucket["first"]["hits"]["hits"][0]["_source"]
        last = bucket["last"]["hits"]["hits"][0]["_source"]
        key = bucket["key"]["message_key"]
        stacks = bucket["with_error"]["latest"]["hits"]["hits"]
        rows.append(
            (
                key if key is not None else (last.get("message") or ""),
                int(bucket["doc_count"]),
                parse_ts(first["ts"]),
                parse_ts(last["ts"]),
                last.get("message"),
                top_counts(endpoints.get(key, {})),
                top_values(bucket["services"]["buckets"]),
                stacks[0]["_source"].get("error") if stacks else None,
            )
        )
    rows.sort(key=lambda r: (-r[1], r[0]))
    return rows


ACCESS_MARGIN: Final = timedelta(days=1)
TERMS_CHUNK: Final = 10_000  # request ids per `terms` query (engines refuse more than 65,536)


def _error_endpoints(searcher: Searcher, values: dict[str, Any]) -> dict[str | None, dict[str, int]]:
    """message_key -> endpoint -> error records, the access line filling in a missing endpoint."""
    counts: dict[str | None, dict[str, int]] = {}
    for bucket in searcher.composite("endpoints", values, "pairs"):
        per = counts.setdefault(bucket["key"]["message_key"], {})
        per[bucket["key"]["endpoint"]] = per.get(bucket["key"]["endpoint"], 0) + int(bucket["doc_count"])
    unplaced = [
        (b["key"]["message_key"], b["key"]["request_id"], int(b["doc_count"]))
        for b in searcher.composite("unplaced", values, "pairs")
    ]
    requests = sorted({rid for _, rid, _ in unplaced})
    access: dict[str, str] = {}
    window = {"access_since": values["since"] - ACCESS_MARGIN, "access_until": values["until"] + ACCESS_MARGIN}
    for start in range(0, len(requests), TERMS_CHUNK):
        derived = {**values, **window, "matched_requests": requests[start : start + TERMS_CHUNK]}
        for bucket in searcher.composite("access", derived, "requests"):
            hits = bucket["line"]["hits"]["hits"]
            if hits and hits[0]["_source"].get("endpoint") is not None:
                access[bucket["key"]["request_id"]] = hits[0]["_source"]["endpoint"]
    for key, rid, n in unplaced:
        endpoint = access.get(rid)
        if endpoint is not None:
            per = counts.setdefault(key, {})
            per[endpoint] = per.get(endpoint, 0) + n
    return counts


def top_counts(counts: Mapping[str, int]) -> str:
    """The three most frequent values as `value (count), ...`, ties alphabetically, like the SQL."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    return ", ".join(f"{value} ({n})" for value, n in ranked)


def timeline_window(values: Mapping[str, Any]) -> tuple[int, int, int]:
    """(start µs, span µs, buckets) of the equal-bucket histogram, as the SQL computes them."""
    lo = _epoch_us(values["since"])
    return lo, _epoch_us(values["until"]) - lo, max(int(values["buckets"]), 1)


def read_timeline(searcher: Searcher, values: dict[str, Any]) -> Rows:
    """Equal buckets over [since, until): a date_histogram at span/n, folded onto n buckets.

    When the window in milliseconds divides by n (1h into 40 is 90 s) the engine's buckets are
    exactly the SQL's; otherwise a bucket edge may differ by under a millisecond.
    """
    lo, span, n = timeline_window(values)
    interval_ms = max(span // n // 1000, 1)
    derived = {**values, "bucket_interval": f"{interval_ms}ms", "bucket_offset": f"+{(lo // 1000) % interval_ms}ms"}
    counts = [0] * n
    answer = searcher.search("histogram", derived).get("aggregations", {}).get("histogram", {})
    for bucket in answer.get("buckets", []):
        start_us = int(bucket["key"]) * 1000
        index = (start_us - lo) * n // span if span else 0
        if 0 <= index < n:
            counts[index] += int(bucket["doc_count"])
    return [(i, _from_epoch_us(lo + span * i // n), counts[i]) for i in range(n)]


def read_slow(searcher: Searcher, values: dict[str, Any]) -> Rows:
    """Percentiles are the engine's estimates (t-digest, high compression): close to, not always
    equal to, DuckDB's exact `quantile_cont`; counts, max and error rate are exact."""
    rows = []
    for bucket in searcher.composite("groups", values, "groups"):
        count = int(bucket["doc_count"])
        pct = {float(k): v for k, v in bucket["latency"]["values"].items()}
        p95 = pct.get(95.0)
        if count == 0 or p95 is None or not p95 > float(values["threshold"]):
            continue
        errors = int(bucket["server_errors"]["doc_count"])
        rows.append(
            (bucket["key"]["key"], count, pct.get(50.0), p95, pct.get(99.0), bucket["max"]["value"], errors / count)
        )
    rows.sort(key=lambda r: (-r[3], r[0]))
    return rows


def read_journey(searcher: Searcher, values: dict[str, Any]) -> Rows:
    context: dict[str, tuple[str | None, str | None]] = {}
    for bucket in searcher.composite("matched", values, "requests"):
        user = bucket["ctx_user"]["buckets"]
        session = bucket["ctx_session"]["buckets"]
        context[bucket["key"]["request_id"]] = (
            user[0]["key"] if user else None,
            session[0]["key"] if session else None,
        )
    derived = {**values, "matched_requests": sorted(context)}
    records = []
    for hit in searcher.hits("hits", derived):
        src = hit["_source"]
        ctx_user, ctx_session = context.get(src.get("request_id") or "", (None, None))
        records.append(
            {
                **src,
                "ts": parse_ts(src["ts"]),
                "user_id": src.get("user_id") or ctx_user,
                "session_id": src.get("session_id") or ctx_session,
            }
        )
    return journey_order(records, searcher.query.columns)


def journey_order(records: list[dict[str, Any]], columns: Sequence[str]) -> Rows:
    """The SQL's order: sessions by first record, requests by first record within them, then ts.

    Each row holds `columns` (the query file's, so the rows always match the header printed above them).
    """
    first_in_session: dict[Any, datetime] = {}
    first_in_request: dict[Any, datetime] = {}
    for r in records:
        s, q = r.get("session_id"), (r.get("session_id"), r.get("request_id"))
        first_in_session[s] = min(first_in_session.get(s, r["ts"]), r["ts"])
        first_in_request[q] = min(first_in_request.get(q, r["ts"]), r["ts"])

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        s, q = r.get("session_id"), r.get("request_id")
        return (
            first_in_session[s],
            s is None,
            s or "",
            first_in_request[(s, q)],
            q is None,
            q or "",
            r["ts"],
            r.get("event_id") or "",
        )

    return [tuple(r.get(c) for c in columns) for r in sorted(records, key=key)]


def _epoch_us(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_epoch_us(us: int) -> datetime:
    from datetime import timedelta

    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


READERS: Final[dict[str, Callable[[Searcher, dict[str, Any]], Rows]]] = {
    "errors": read_errors,
    "timeline": read_timeline,
    "slow": read_slow,
    "journey": read_journey,
}
