"""Retention on Elasticsearch/OpenSearch through the engine adapter.

Per-level daily indices (the sink's `logs-{service}-{level}-{date}`) are deleted whole: the
name says the level, the service and the day. Only names that the policy's pattern parses are
candidates; every DELETE names one concrete index, never a wildcard. When the pattern has no
`{date}` (or the date does not parse), the creation date stands in, but an index that still
receives writes is only as old as its newest document, so both must be past the cutoff.

Indices that mix levels (`es.mixed`) are cleaned with `_delete_by_query` on level and ts, one
request per level (and per overriding service). That API lives in the reindex module: OpenSearch
ships it, minimal Elasticsearch builds may not, and then the plan says so and apply fails those
actions with the reason (exit 1) instead of pretending.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Final

from logpipe.errors import TerminalError
from logpipe.retention.policy import LEVELS, Policy
from logpipe.retention.run import Action
from logpipe.retention.window import boundary, date_regex, day_is_expired
from logpipe.words import counted

if TYPE_CHECKING:
    from logpipe.engine.adapter import EngineClient

_CAT: Final = "format=json&bytes=b&h=index,docs.count,store.size,creation.date&expand_wildcards=open"
PROBE_INDEX: Final = "logpipe-retention-probe-no-such-index"
NO_DBQ: Final = "does not offer _delete_by_query (its reindex module is missing)"


class EsBackend:
    name = "es"

    def __init__(self, policy: Policy) -> None:
        assert policy.es is not None
        from logpipe.engine.adapter import require_clients

        require_clients()  # fails the run at once (one line naming the pip command), not as a plan error
        self.policy = policy
        self.target = policy.es
        self.config = policy.es.config
        self.notes: list[str] = []
        self._client: EngineClient | None = None
        self._regex = name_regex(self.config.index, self.config.date_format)
        self._fields = set(self._regex.groupindex)

    @property
    def client(self) -> EngineClient:
        if self._client is None:
            from logpipe.engine.adapter import connect

            self._client = connect(self.config)
        return self._client

    # ---------------------------------------------------------------------------------- plan
    def plan(self, now: datetime) -> list[Action]:
        actions = self._plan_daily(now)
        for mixed in self.target.mixed:
            actions.extend(self._plan_mixed(mixed, now))
        return actions

    def _cat(self, pattern: str) -> list[dict[str, Any]]:
        answer = self.client.request("GET", f"/_cat/indices/{pattern}?{_CAT}", ok_missing=True)
        rows = answer.get("result", [])
        return [r for r in rows if isinstance(r, dict) and not str(r.get("index", "")).startswith(".")]

    def _plan_daily(self, now: datetime) -> list[Action]:
        actions: list[Action] = []
        foreign = 0
        for row in sorted(self._cat(f"{self.config.index_prefix}*"), key=lambda r: str(r["index"])):
            name = str(row["index"])
            match = self._regex.match(name)
            if match is None:
                foreign += 1
                continue
            level = match.group("level").upper()
            service = match.group("service") if "service" in self._fields else None
            age = self.policy.age(level, self._service_key(service)) if service else self.policy.longest(level)
            if age is None:
                continue
            cut = boundary(now, age, self.policy.max_clock_skew)
            day = self._day_of(name, match, row)
            if day is None or not day_is_expired(day, cut):
                continue
            actions.append(
                Action(
                    "es",
                    "delete-index",
                    name,
                    level,
                    service,
                    cut,
                    count=_int(row.get("docs.count")),
                    bytes=_int(row.get("store.size")),
                    handle=name,
                    store=self.config.display_url,
                )
            )
        if foreign:
            self.notes.append(
                f"{foreign} index(es) under {self.config.index_prefix}* do not match {self.config.index!r}; left alone"
            )
        return actions

    def _service_key(self, service: str) -> str | None:
        """The policy's service whose index-name form (lower-case) is `service`, if any."""
        for name in self.policy.services:
            if name.lower() == service:
                return name
        return service

    def _day_of(self, name: str, match: re.Match[str], row: dict[str, Any]) -> date | None:
        if "date" in self._fields:
            try:
                return datetime.strptime(match.group("date"), self.config.date_format).date()
            except ValueError:
                pass
        created = _int(row.get("creation.date"))
        if created is None:
            return None
        day = datetime.fromtimestamp(created / 1000, UTC).date()
        newest = self._newest(name, "ts")
        if newest is not None:
            day = max(day, newest)
        self.notes.append(f"{name}: no date in the name; using its creation date and newest document ({day})")
        return day

    def _newest(self, index: str, ts_field: str) -> date | None:
        body = {"size": 0, "aggs": {"newest": {"max": {"field": ts_field}}}}
        value = self.client.request("POST", f"/{index}/_search", body).get("aggregations", {}).get("newest", {})
        millis = value.get("value")
        return None if millis is None else datetime.fromtimestamp(float(millis) / 1000, UTC).date()

    def _plan_mixed(self, mixed: Any, now: datetime) -> list[Action]:
        rows = [r for r in self._cat(mixed.pattern) if fnmatchcase(str(r["index"]), mixed.pattern)]
        names = sorted(str(r["index"]) for r in rows)
        if not names:
            return []
        docs = sum(_int(r.get("docs.count")) or 0 for r in rows)
        size = sum(_int(r.get("store.size")) or 0 for r in rows)
        supported = self._has_delete_by_query()
        actions: list[Action] = []
        for level in LEVELS:
            groups: list[tuple[str | None, Any]] = [(None, self.policy.levels[level])]
            groups += [(s, self.policy.services[s][level]) for s in self.policy.overridden(level)]
            others = self.policy.overridden(level)
            for service, age in groups:
                if age is None:
                    continue
                cut = boundary(now, age, self.policy.max_clock_skew)
                query = mixed_query(mixed, level, cut, service=service, exclude=others if service is None else [])
                count = int(self.client.request("POST", f"/{','.join(names)}/_count", {"query": query}).get("count", 0))
                if count == 0:
                    continue
                action = Action(
                    "es",
                    "delete-by-query",
                    mixed.pattern,
                    level,
                    service,
                    cut,
                    count=count,
                    bytes=(size * count // docs) if docs else None,
                    request={"method": "POST", "path": f"/{mixed.pattern}/_delete_by_query", "body": {"query": query}},
                    handle=(mixed, query),
                    store=self.config.display_url,
                )
                if not supported:
                    action.state = "unsupported"
                actions.append(action)
        if actions and not supported:
            self.notes.append(
                f"{self.client.info.describe()} at {self.config.display_url} {NO_DBQ}: "
                f"{mixed.pattern} cannot be cleaned by level; apply will report these actions as failed"
            )
        return actions

    def _has_delete_by_query(self) -> bool:
        """Ask by doing: `_delete_by_query` on a name that cannot exist answers 404 (no such
        index) where the API is served and "no handler found" where it is not. Module lists are
        no guide: an embedded node reports its plugins by class, not by module name."""
        try:
            self.client.request(
                "POST", f"/{PROBE_INDEX}/_delete_by_query", {"query": {"match_none": {}}}, ok_missing=True
            )
        except TerminalError as exc:
            if "no handler found" in str(exc):
                return False
            raise
        return True

    # --------------------------------------------------------------------------------- apply
    def apply(self, action: Action) -> int | None:
        if action.kind == "delete-index":
            name = str(action.handle)
            if not self._regex.match(name) or any(c in name for c in "*?,"):
                raise TerminalError(f"refusing to delete {name!r}: not a concrete name of {self.config.index!r}")
            self.client.request("DELETE", f"/{name}", ok_missing=True)
            return action.count
        mixed, query = action.handle
        if action.state == "unsupported":
            raise TerminalError(f"{self.client.info.describe()} {NO_DBQ}; {mixed.pattern} left as is")
        names = sorted(str(r["index"]) for r in self._cat(mixed.pattern) if fnmatchcase(str(r["index"]), mixed.pattern))
        if not names:
            return 0
        path = f"/{','.join(names)}/_delete_by_query?conflicts=proceed&refresh=true&wait_for_completion=true"
        try:
            answer = self.client.request("POST", path, {"query": query})
        except TerminalError as exc:
            if "no handler found" in str(exc):
                raise TerminalError(f"{self.client.info.describe()} {NO_DBQ}; {mixed.pattern} left as is") from None
            raise
        failures = answer.get("failures") or []
        if failures:
            raise TerminalError(
                f"_delete_by_query on {mixed.pattern}: {counted(len(failures), 'failure')}, first: {failures[0]}"
            )
        return int(answer.get("deleted", 0))

    def finish(self, now: datetime) -> None:
        pass

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def name_regex(pattern: str, date_format: str) -> re.Pattern[str]:
    """`logs-{service}-{level}-{date}` -> a regex that parses exactly the names the sink writes."""
    from logpipe.engine.config import check_index_pattern

    out: list[str] = []
    seen: set[str] = set()
    levels = "|".join(level.lower() for level in LEVELS)
    for kind, value in check_index_pattern(pattern):
        if kind == "text":
            out.append(re.escape(value))
        elif value in seen:
            out.append(f"(?P={value})")
        else:
            seen.add(value)
            body = {"level": levels, "date": date_regex(date_format)}.get(value, r"[^,*?\s]+?")
            out.append(f"(?P<{value}>{body})")
    return re.compile("^" + "".join(out) + "$")


def mixed_query(mixed: Any, level: str, cut: datetime, *, service: str | None, exclude: list[str]) -> dict[str, Any]:
    """Documents of `level` (either case) older than `cut`, of one service or of all but `exclude`."""
    query: dict[str, Any] = {
        "bool": {
            "filter": [
                {"terms": {mixed.level_field: [level, level.lower()]}},
                {"range": {mixed.ts_field: {"lt": cut.isoformat().replace("+00:00", "Z")}}},
            ]
        }
    }
    if service is not None:
        query["bool"]["filter"].append({"term": {mixed.service_field: service}})
    if exclude:
        query["bool"]["must_not"] = [{"terms": {mixed.service_field: exclude}}]
    return query


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
