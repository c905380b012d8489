"""Retention on Loki: one `POST /loki/api/v1/delete` per level selector (and overriding service).

Loki deletes asynchronously (its compactor works through a queue), so a request that was already
sent looks exactly like work still to do. Every plan therefore lists the existing requests first
(`GET /loki/api/v1/delete`) and marks an action `pending` when a request with the same selector
that reaches at least as far is there and not canceled; apply skips those. Because cutoffs are
aligned to UTC midnight (window.py), a rerun on the same day builds byte-identical requests.

Selectors: `{level="error", service!~"checkout|billing"}` for the policy's default age, and
`{level="error", service="checkout"}` per service override. Level values are lower-case, as the
Loki sink sends them. When `service` is not a stream label, Loki cannot tell services apart and
the longest age of a level is used for all of them (the same rule as the archive).
Counts come from `/loki/api/v1/index/stats` where the server offers it; otherwise they are unknown.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any, Final

from logpipe.errors import TerminalError, TransientError
from logpipe.retention.policy import LEVELS, Policy
from logpipe.retention.run import Action
from logpipe.retention.window import boundary

DELETE_PATH: Final = "/loki/api/v1/delete"
STATS_PATH: Final = "/loki/api/v1/index/stats"


class LokiBackend:
    name = "loki"

    def __init__(self, policy: Policy) -> None:
        assert policy.loki is not None and policy.loki.config is not None
        self.policy = policy
        self.config = policy.loki.config
        self.by_service = "service" in policy.loki.labels
        self.notes: list[str] = []

    def plan(self, now: datetime) -> list[Action]:
        existing = self._existing()
        actions: list[Action] = []
        for level in LEVELS:
            for selector, service, age in self._selectors(level):
                if age is None:
                    continue
                cut = boundary(now, age, self.policy.max_clock_skew)
                params = {"query": selector, "start": "0", "end": str(int(cut.timestamp()))}
                action = Action(
                    "loki",
                    "loki-delete",
                    selector,
                    level,
                    service,
                    cut,
                    request={"method": "POST", "path": DELETE_PATH, "params": params},
                    store=self.config.url,
                )
                if any(_covers(r, selector, cut) for r in existing):
                    action.state = "pending"
                else:
                    action.count, action.bytes = self._stats(selector, cut)
                actions.append(action)
        return actions

    def _selectors(self, level: str) -> list[tuple[str, str | None, Any]]:
        value = level.lower()
        overridden = self.policy.overridden(level)
        if not overridden:
            return [(f'{{level="{value}"}}', None, self.policy.levels[level])]
        if not self.by_service:
            self.notes.append(f"{level}: `service` is not a stream label, so the longest age applies to every service")
            return [(f'{{level="{value}"}}', None, self.policy.longest(level))]
        others = "|".join(re.escape(s) for s in overridden).replace("\\", "\\\\")
        out: list[tuple[str, str | None, Any]] = [
            (f'{{level="{value}", service!~"{others}"}}', None, self.policy.levels[level])
        ]
        out += [(f'{{level="{value}", service="{s}"}}', s, self.policy.services[s][level]) for s in overridden]
        return out

    def _existing(self) -> list[dict[str, Any]]:
        answer = self._call("GET", DELETE_PATH, {})
        return [r for r in answer if isinstance(r, dict)] if isinstance(answer, list) else []

    def _stats(self, selector: str, cut: datetime) -> tuple[int | None, int | None]:
        try:
            answer = self._call(
                "GET", STATS_PATH, {"query": selector, "start": "0", "end": str(int(cut.timestamp()) * 1_000_000_000)}
            )
        except TerminalError:
            return None, None  # not offered (older Loki, a proxy): counts stay unknown
        if not isinstance(answer, dict):
            return None, None
        return _int(answer.get("entries")), _int(answer.get("bytes"))

    def apply(self, action: Action) -> int | None:
        assert action.request is not None
        self._call("POST", DELETE_PATH, action.request["params"])
        return action.count

    def _call(self, method: str, path: str, params: dict[str, str]) -> Any:
        url = f"{self.config.url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        headers = {
            k: v for k, v in self.config.headers().items() if k in ("Authorization", "X-Scope-OrgID", "User-Agent")
        }
        request = urllib.request.Request(url, method=method, headers=headers)
        what = self.config.mask(f"{self.config.url} {method} {path}")
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            text = self.config.mask(exc.read().decode("utf-8", "replace").strip()[:300])
            if exc.code == 429 or exc.code >= 500:
                raise TransientError(f"{what}: HTTP {exc.code} {text}") from None
            raise TerminalError(f"{what}: HTTP {exc.code} {text}") from None
        except OSError as exc:
            raise TransientError(f"{what}: {exc}") from None
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise TerminalError(f"{what}: the answer is not JSON") from None

    def finish(self, now: datetime) -> None:
        pass

    def close(self) -> None:
        pass


def _covers(request: dict[str, Any], selector: str, cut: datetime) -> bool:
    """An existing request that already deletes everything this one would."""
    if request.get("status") == "canceled" or request.get("query") != selector:
        return False
    try:
        return float(request.get("end_time", 0)) >= cut.timestamp() and float(request.get("start_time", 0)) <= 0
    except (TypeError, ValueError):
        return False


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
