"""Loki retention against the Loki double (tests/support/loki_double.py, Loki's documented delete API)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from retentionhelp import retention, write_policy

from tests.support.loki_double import DoubleServer

MIDNIGHT = lambda day: int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())  # noqa: E731


def loki_policy(tmp: Path, server: DoubleServer, *, labels: str | None = None, **extra: object) -> Path:
    url = f"loki://{server.url}" + (f"?{urlencode({'labels': labels})}" if labels else "")
    return write_policy(
        tmp / "policy.yaml",
        {"enforce": ["loki"], "loki": {"url": url}, "audit": {"path": str(tmp / "audit.jsonl")}, **extra},
    )


class TestLokiDeletes:
    def test_one_request_per_level_with_the_midnight_cutoff(self, loki: DoubleServer, tmp_path: Path) -> None:
        policy = loki_policy(tmp_path, loki)
        plan = retention("plan", "--format", "json", policy=policy)
        assert plan.code == 0, plan.err
        assert loki.double.deletes == []  # plan only reads
        requests = {a["target"]: a["request"]["params"] for a in json.loads(plan.out)["actions"]}
        assert requests['{level="error"}'] == {
            "query": '{level="error"}',
            "start": "0",
            "end": str(MIDNIGHT("2026-08-29")),
        }
        assert requests['{level="debug"}']["end"] == str(MIDNIGHT("2026-11-26"))
        run = retention("apply", "--yes", policy=policy)
        assert run.code == 0, run.err
        sent = {d["query"]: d for d in loki.double.deletes}
        assert {a["store"] for a in run.audit() if a["event"] == "deleted"} == {f"http://{loki.url}"}
        assert set(sent) == {f'{{level="{lv}"}}' for lv in ("trace", "debug", "info", "warning", "error", "critical")}
        assert sent['{level="info"}']["end_time"] == MIDNIGHT("2026-11-20")
        assert sent['{level="critical"}']["end_time"] == sent['{level="error"}']["end_time"]

    def test_rerun_lists_pending_first_and_sends_no_duplicate(self, loki: DoubleServer, tmp_path: Path) -> None:
        policy = loki_policy(tmp_path, loki)
        assert retention("apply", "--yes", policy=policy).code == 0
        assert len(loki.double.deletes) == 6
        again = retention("apply", "--yes", policy=policy, now="2026-11-27T23:00:00Z")
        assert again.code == 0, again.err
        assert len(loki.double.deletes) == 6  # same day, same boundary: all pending
        assert [a["event"] for a in again.audit()].count("skipped") == 6
        plan = json.loads(retention("plan", "--format", "json", policy=policy).out)
        assert {a["state"] for a in plan["actions"]} == {"pending"}
        loki.double.deletes[0]["status"] = "canceled"
        assert retention("apply", "--yes", policy=policy).code == 0
        assert len(loki.double.deletes) == 7  # a canceled request does not count
        tomorrow = retention("apply", "--yes", policy=policy, now="2026-11-28T12:00:00Z")
        assert tomorrow.code == 0 and len(loki.double.deletes) == 13  # a new day reaches further

    def test_service_overrides_split_the_selector(self, loki: DoubleServer, tmp_path: Path) -> None:
        policy = loki_policy(tmp_path, loki, services={"checkout": {"ERROR": "365d"}, "a.b": {"ERROR": "forever"}})
        assert retention("apply", "--yes", policy=policy).code == 0
        queries = {d["query"]: d["end_time"] for d in loki.double.deletes}
        assert queries['{level="error", service!~"a\\\\.b|checkout"}'] == MIDNIGHT("2026-08-29")
        assert queries['{level="error", service="checkout"}'] == MIDNIGHT("2025-11-27")
        assert '{level="error", service="a.b"}' not in queries  # kept forever: no request
        assert '{level="critical", service="checkout"}' in queries  # CRITICAL follows the service's ERROR

    def test_without_service_label_the_longest_age_wins(self, loki: DoubleServer, tmp_path: Path) -> None:
        policy = loki_policy(tmp_path, loki, labels="level,host", services={"checkout": {"ERROR": "365d"}})
        run = retention("apply", "--yes", policy=policy)
        assert run.code == 0, run.err
        queries = {d["query"]: d["end_time"] for d in loki.double.deletes}
        assert queries['{level="error"}'] == MIDNIGHT("2025-11-27")

    def test_level_not_a_label_is_a_bad_policy_and_sends_nothing(self, loki: DoubleServer, tmp_path: Path) -> None:
        policy = loki_policy(tmp_path, loki, labels="service,host")
        run = retention("apply", "--yes", policy=policy)
        assert run.code == 2 and "loki.url" in run.err and "level" in run.err
        assert loki.double.deletes == []

    def test_loki_down_fails_with_exit_1(self, loki: DoubleServer, tmp_path: Path) -> None:
        policy = loki_policy(tmp_path, loki)
        loki.stop()
        run = retention("apply", "--yes", policy=policy)
        assert run.code == 1
        assert any(a["event"] == "failed" for a in run.audit())
