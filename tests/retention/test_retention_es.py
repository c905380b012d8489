"""Retention on real engines: backdated per-level daily indices, a mixed index, wrong patterns."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from retentionhelp import TODAY, create_index, doc_count, index_names, retention, write_policy

from tests.support.services import ENGINES, url

# (service, level, days back): with --now at noon TODAY and the 1h margin, an index goes when
# days back >= age + 1 (its whole day ended before midnight of TODAY - age).
DAILY = [("shop", lv, back) for lv in ("debug", "info", "error") for back in (1, 2, 7, 8, 90, 91, 92)]
DAILY += [("checkout", "error", back) for back in (91, 200, 400)]
AGES = {"debug": 1, "info": 7, "error": 90}


def day_name(back: int) -> str:
    return (TODAY - timedelta(days=back)).strftime("%Y.%m.%d")


def ts(back: int) -> str:
    return f"{(TODAY - timedelta(days=back)).isoformat()}T12:00:00Z"


def build_daily(url: str, prefix: str) -> set[str]:
    names = set()
    for service, level, back in DAILY:
        name = f"{prefix}{service}-{level}-{day_name(back)}"
        create_index(url, name, [{"ts": ts(back), "level": level.upper(), "service": service, "message": "m"}])
        names.add(name)
    return names


def expected_daily(prefix: str) -> set[str]:
    keep = set()
    for service, level, back in DAILY:
        age = 365 if (service, level) == ("checkout", "error") else AGES[level]
        if back < age + 1:
            keep.add(f"{prefix}{service}-{level}-{day_name(back)}")
    return keep


def es_policy(tmp: Path, url: str, prefix: str, **es: Any) -> Path:
    host = url.split("://", 1)[1]
    return write_policy(
        tmp / "policy.yaml",
        {
            "enforce": ["es"],
            "services": {"checkout": {"ERROR": "365d"}},
            "es": {"url": f"es://{host}", "index": prefix + "{service}-{level}-{date}", **es},
            "audit": {"path": str(tmp / "audit.jsonl")},
        },
    )


MIXED = [(lv, back, "shop") for lv in ("DEBUG", "INFO", "ERROR") for back in (1, 2, 8, 91)]
MIXED += [("ERROR", 91, "checkout"), ("error", 95, "shop"), ("NOTICE", 400, "shop")]


def build_mixed(url: str, name: str) -> None:
    create_index(url, name, [{"ts": ts(b), "level": lv, "service": s, "message": "m"} for lv, b, s in MIXED])


def expected_mixed_left() -> int:
    left = 0
    for level, back, service in MIXED:
        age = {"debug": 1, "info": 7, "error": 90}.get(level.lower())
        if service == "checkout":
            age = 365
        left += age is None or back < age + 1
    return left


class TestOpenSearch:
    def test_daily_indices_go_at_their_level_cutoff(self, opensearch: str, prefix: str, tmp_path: Path) -> None:
        """Per level and per service override, only whole days past the cutoff are deleted."""
        created = build_daily(opensearch, prefix)
        foreign = {f"{prefix}notes", f"{prefix}shop-error-archive", f"{prefix}shop-notice-{day_name(300)}"}
        for name in foreign:
            create_index(opensearch, name, [])
        policy = es_policy(tmp_path, opensearch, prefix)
        plan = retention("plan", "--format", "json", policy=policy)
        assert plan.code == 0, plan.err
        planned = {a["target"] for a in json.loads(plan.out)["actions"]}
        assert planned == created - expected_daily(prefix)
        assert index_names(opensearch, prefix) == created | foreign  # plan deleted nothing
        run = retention("apply", "--yes", policy=policy)
        assert run.code == 0, run.err
        assert index_names(opensearch, prefix) == expected_daily(prefix) | foreign
        deleted = [a for a in run.audit() if a["event"] == "deleted"]
        assert {a["target"] for a in deleted} == planned and all(a["deleted"] == 1 for a in deleted)
        again = retention("apply", "--yes", policy=policy)
        assert again.code == 0 and [a["event"] for a in again.audit()] == ["start", "end"]

    def test_mixed_index_by_delete_by_query(self, opensearch: str, prefix: str, tmp_path: Path) -> None:
        name = f"{prefix}mixed-app"
        build_mixed(opensearch, name)
        other = f"{prefix}mixedless"  # does not match the mixed pattern: untouched
        build_mixed(opensearch, other)
        policy = es_policy(tmp_path, opensearch, prefix, mixed=[{"pattern": f"{prefix}mixed-*"}])
        plan = retention("plan", "--format", "json", policy=policy)
        assert plan.code == 0, plan.err
        actions = json.loads(plan.out)["actions"]
        assert {(a["level"], a["service"], a["count"]) for a in actions} == {
            ("DEBUG", "*", 3),
            ("INFO", "*", 2),
            ("ERROR", "*", 2),
        }
        assert all(a["request"]["path"].endswith("/_delete_by_query") for a in actions)
        run = retention("apply", "--yes", policy=policy)
        assert run.code == 0, run.err
        assert doc_count(opensearch, name) == expected_mixed_left()
        assert doc_count(opensearch, name, {"term": {"service": "checkout"}}) == 1  # 365d override kept
        assert doc_count(opensearch, other) == len(MIXED)
        again = retention("plan", "--format", "json", policy=policy)
        assert json.loads(again.out)["actions"] == []

    def test_wrong_pattern_deletes_nothing(self, opensearch: str, prefix: str, tmp_path: Path) -> None:
        """A pattern without {date}, another prefix, or a wildcard-only mixed pattern: nothing goes."""
        created = build_daily(opensearch, prefix)
        undated = f"{prefix}shop-error"  # no date in the name: created today, so young whatever it holds
        create_index(opensearch, undated, [{"ts": ts(400), "level": "ERROR", "service": "shop", "message": "m"}])
        created.add(undated)
        for index, code in ((prefix + "{service}-{level}", 0), ("t-ret-other-{service}-{level}-{date}", 0)):
            policy = es_policy(tmp_path, opensearch, prefix)
            doc = json.loads(json.dumps(__import__("yaml").safe_load(policy.read_text())))
            doc["es"]["index"] = index
            write_policy(policy, doc)
            run = retention("apply", "--yes", policy=policy)
            assert run.code == code, run.err
            assert index_names(opensearch, prefix) == created
        for pattern in ("*", "t-*", "*-error-*", f"{prefix}a,{prefix}b", "-logs-*", "_all"):
            policy = es_policy(tmp_path, opensearch, prefix, mixed=[{"pattern": pattern}])
            run = retention("apply", "--yes", policy=policy)
            assert run.code == 2 and "es.mixed[0].pattern" in run.err, (pattern, run.err)
            assert index_names(opensearch, prefix) == created


class TestElasticsearch:
    def test_whole_indices_go_and_missing_delete_by_query_is_a_clear_failure(
        self, elasticsearch: str, prefix: str, tmp_path: Path
    ) -> None:
        """The integ-test build has no reindex module: mixed actions fail (exit 1), the rest is done."""
        created = build_daily(elasticsearch, prefix)
        build_mixed(elasticsearch, f"{prefix}mixed-app")
        policy = es_policy(tmp_path, elasticsearch, prefix, mixed=[{"pattern": f"{prefix}mixed-*"}])
        plan = retention("plan", "--format", "json", policy=policy)
        doc = json.loads(plan.out)
        assert any("_delete_by_query" in n for n in doc["notes"]), doc["notes"]
        run = retention("apply", "--yes", policy=policy)
        assert run.code == 1, run.err
        failed = [a for a in run.audit() if a["event"] == "failed"]
        assert failed and all("does not offer _delete_by_query" in a["error"] for a in failed)
        assert index_names(elasticsearch, prefix) == expected_daily(prefix) | {f"{prefix}mixed-app"}
        assert created - expected_daily(prefix)
        assert doc_count(elasticsearch, f"{prefix}mixed-app") == len(MIXED)


def test_engine_urls_are_the_test_services() -> None:
    """The engines retention is tested on are scripts/services' own, on loopback."""
    assert ENGINES == ("opensearch", "elasticsearch")
    assert all(url(name).startswith("http://127.0.0.1:") for name in ENGINES)
