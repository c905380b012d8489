"""The pure parts of the engine sink and backend: settings, secrets, encoding, item sorting,
templates. Engine answers used here were recorded from the real servers scripts/services runs
(OpenSearch 2.19.6, Elasticsearch 9.2.0 integ-test build), not invented."""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from logpipe.engine.config import check_index_pattern, parse_target
from logpipe.engine.health import ELASTICSEARCH, OPENSEARCH, classify
from logpipe.errors import TransientError, UsageError
from logpipe.model import Batch
from logpipe.read.catalog import load_catalog
from logpipe.read.es_catalog import es_dirs, get_es_query, journey_order, substitute
from logpipe.schema import record_schema
from logpipe.sinks.elasticsearch.encode import document_of, encode, index_of, template_body
from logpipe.sinks.elasticsearch.sink import EsSink, chunks, sort_items
from logpipe.sinks.retry import backoff_s
from tests.support.net import free_port
from tests.support.wait import wait_until

# --- settings and secrets ---------------------------------------------------------------------


def test_url_forms_and_options() -> None:
    c = parse_target("es://logs.example:9243?index=app-{service}-{date}&replicas=0&concurrency=4", env={})
    assert (c.url, c.index, c.replicas, c.concurrency, c.index_prefix) == (
        "http://logs.example:9243",
        "app-{service}-{date}",
        0,
        4,
        "app-",
    )
    assert parse_target("es+https://h:1", env={}).url == "https://h:1"
    assert parse_target("es://h:1?tls=true", env={}).url == "https://h:1"
    assert parse_target("http://h", env={}).url == "http://h:9200"


@pytest.mark.parametrize(
    "bad",
    [
        "kafka://h:1",
        "es://",
        "es://h:1?bogus=1",
        "es://h:1?replicas=-1",
        "es://h:1?verify=maybe",
        "es://h:1?index=logs-{nope}",
    ],
)
def test_bad_urls_are_usage_errors(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_target(bad, env={})


def test_secrets_come_from_env_or_url_and_are_never_shown() -> None:
    env = {"LOGPIPE_ES_USER": "shipper", "LOGPIPE_ES_PASSWORD": "s3cr3t-pw", "LOGPIPE_ES_API_KEY": "k3y-value"}
    c = parse_target("es://h:1", env=env)
    assert (c.username, c.password, c.api_key) == ("shipper", "s3cr3t-pw", "k3y-value")
    assert "s3cr3t" not in repr(c) and "k3y" not in repr(c) and "s3cr3t" not in c.display_url
    assert c.mask("401 for shipper:s3cr3t-pw with ApiKey k3y-value") == "401 for shipper:*** with ApiKey ***"
    u = parse_target("es://bob:p%40ss@h:1", env={})
    assert (u.username, u.password, u.display_url) == ("bob", "p@ss", "http://h:1")
    with pytest.raises(UsageError) as info:
        parse_target("es://bob:hunter2@h:1?bogus=1", env={})
    assert "hunter2" not in str(info.value)


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="CA file"):
        parse_target(f"es+https://h:1?ca={tmp_path}/none.pem", env={})
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    c = parse_target(f"es+https://h:1?ca={ca}&verify=false", env={})
    assert c.ca_file == ca and c.verify is False


def test_index_patterns() -> None:
    assert check_index_pattern("logs-{service}-{level}-{date}")[0] == ("text", "logs-")
    for bad in ("{service}-x", "Logs-{service}", "logs {service}", "-x-{date}"):
        with pytest.raises(UsageError):
            check_index_pattern(bad)


# --- engine detection from recorded `GET /` answers ---------------------------------------------

OPENSEARCH_ROOT = {
    "name": "n1",
    "cluster_name": "logpipe-test",
    "version": {"distribution": "opensearch", "number": "2.19.6", "lucene_version": "9.12.3"},
    "tagline": "The OpenSearch Project: https://opensearch.org/",
}
# Elasticsearch 9.2.0's integ-test build has no root handler; every answer carries the product header.
ES_ROOT_405 = {"error": "Incorrect HTTP method for uri [/] and method [GET], allowed: [DELETE]", "status": 405}


def test_engine_detection() -> None:
    assert classify(200, {}, OPENSEARCH_ROOT) == OPENSEARCH
    assert classify(405, {"x-elastic-product": "Elasticsearch"}, ES_ROOT_405) == ELASTICSEARCH
    assert classify(200, {"x-elastic-product": "Elasticsearch"}, {"version": {"number": "8.15.0"}}) == ELASTICSEARCH
    assert classify(200, {}, {"hello": "proxy"}) is None


# --- encoding ------------------------------------------------------------------------------


def records(**columns: list[Any]) -> pa.Table:
    n = len(next(iter(columns.values())))
    data = {name: [None] * n for name in record_schema().names}
    data.update(columns)
    return pa.table(data, schema=record_schema())


def test_encode_names_indices_and_keeps_microseconds() -> None:
    ts = [datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC), datetime(2026, 1, 3, 0, 0, tzinfo=UTC)]
    table = records(
        ts=ts,
        level=["ERROR", "INFO"],
        service=["Shop API/v2", None],
        event_id=["e1", "e2"],
        offset=[0, 7],
        message=['quote " and\nnewline', "x"],
        status=[500, None],
    )
    out = encode(table, parse_target("es://h:1", env={}))
    assert out.offsets == [0, 7]
    assert out.indexes == ["logs-shop_api_v2-error-2026.01.02", "logs-unknown-info-2026.01.03"]
    assert index_of(out.lines[0]) == out.indexes[0]
    action = json.loads(out.lines[0].split("\n")[0])
    assert action == {"index": {"_index": "logs-shop_api_v2-error-2026.01.02", "_id": "e1"}}
    doc = json.loads(document_of(out.lines[0]))
    assert doc["ts"] == "2026-01-02T03:04:05.123456Z"
    assert "user_id" not in doc and "attrs" not in doc, "null fields are left out"
    assert json.loads(document_of(out.lines[1])) == {
        "ts": "2026-01-03T00:00:00.000000Z",
        "level": "INFO",
        "message": "x",
        "offset": 7,
        "event_id": "e2",
    }
    assert doc["message"] == 'quote " and\nnewline' and doc["status"] == 500
    assert out.nbytes == sum(len(line.encode()) for line in out.lines)
    assert all(line.count("\n") == 2 for line in out.lines)


def test_template_maps_every_canonical_field_and_keeps_attrs_out_of_the_index() -> None:
    body = template_body(parse_target("es://h:1?index=app-{service}&replicas=0", env={}))
    props = body["template"]["mappings"]["properties"]
    assert set(props) == set(record_schema().names)
    assert body["index_patterns"] == ["app-*"]
    assert body["template"]["mappings"]["dynamic"] is False
    assert props["attrs"]["index"] is False
    assert props["message"]["type"] == "text" and props["message"]["fields"]["keyword"]["type"] == "keyword"
    assert props["ts"]["type"] == "date_nanos" and props["status"]["type"] == "integer"
    assert body["template"]["settings"]["number_of_replicas"] == 0


# --- the bulk answer, item by item --------------------------------------------------------------

RECORDED_BULK = {  # OpenSearch 2.19.6 under a one-slot write queue, with a mapping conflict
    "errors": True,
    "items": [
        {"index": {"status": 201}},
        {"index": {"status": 429, "error": {"type": "rejected_execution_exception", "reason": "rejected execution"}}},
        {
            "index": {
                "status": 400,
                "error": {
                    "type": "mapper_parsing_exception",
                    "reason": "failed to parse field [message] of type [long]",
                },
            }
        },
        {"index": {"status": 200}},
        {
            "index": {
                "status": 503,
                "error": {"type": "unavailable_shards_exception", "reason": "primary shard is not active"},
            }
        },
    ],
}


def test_sort_items() -> None:
    outcome = sort_items(RECORDED_BULK, 5)
    assert (outcome.ok, outcome.retry, outcome.throttled) == (2, [1, 4], 1)
    assert outcome.dead == [(2, "HTTP 400 mapper_parsing_exception: failed to parse field [message] of type [long]")]
    assert sort_items({"errors": False}, 3).ok == 3
    assert sort_items({"errors": True, "items": []}, 2).retry == [0, 1]  # an answer that lost items


def test_chunks_and_backoff() -> None:
    assert chunks([5, 5, 5, 20, 1], [0, 1, 2, 3, 4], 10) == [[0, 1], [2], [3], [4]]
    assert chunks([5, 5], [], 10) == []
    rng = random.Random(1)
    waits = [backoff_s(a, 10.0, rng) for a in range(12)]
    assert all(0 < w <= 10.0 for w in waits)
    assert max(waits[:2]) < 0.5 and min(waits[-3:]) >= 2.5


def test_an_engine_that_is_down_holds_the_flush_and_reports_the_backlog() -> None:
    """Nothing listens on the port (a real refused connection): flush keeps the items, reports
    them in buffered_bytes while it retries, and gives up with TransientError after retry_for."""
    config = parse_target(f"es://127.0.0.1:{free_port()}?retry_for=2", env={})
    letters: list[Batch] = []
    sink = EsSink(config, dead_letters=letters.append)
    table = records(
        ts=[datetime(2026, 1, 1, tzinfo=UTC)] * 3, level=["INFO"] * 3, event_id=["a", "b", "c"], offset=[0, 1, 2]
    )
    sink.send(Batch("src", "app.log", 0, 30, table, (), 0))
    backlog = sink.buffered_bytes()
    assert backlog > 0
    seen: list[int] = []
    errors: list[BaseException] = []

    def flush() -> None:
        try:
            sink.flush()
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=flush)
    worker.start()
    wait_until("the flush to take the batch", sink.in_flight_bytes, timeout_s=10, every_s=0.01)
    seen.append(sink.in_flight_bytes())
    sink.send(Batch("src", "app.log", 30, 60, table, (), 0))  # the pipeline may buffer one more round
    buffered = sink.buffered_bytes()
    worker.join(30)
    sink.close()
    assert seen == [backlog], "the blocked flush holds exactly what was sent before it"
    assert buffered == backlog, "the buffer holds only what came after"
    assert len(errors) == 1 and isinstance(errors[0], TransientError)
    assert "cannot reach" in str(errors[0]) or "not indexed" in str(errors[0])
    assert not letters


def test_interrupt_ends_a_flush_stuck_on_an_engine_that_is_down() -> None:
    """SIGTERM while the engine is down: the retrying flush gives up at once, unacknowledged."""
    config = parse_target(f"es://127.0.0.1:{free_port()}?retry_for=300", env={})
    sink = EsSink(config, dead_letters=lambda batch: None)
    sink.send(
        Batch(
            "src",
            "app.log",
            0,
            10,
            records(ts=[datetime(2026, 1, 1, tzinfo=UTC)], level=["INFO"], event_id=["a"], offset=[0]),
            (),
            0,
        )
    )
    errors: list[BaseException] = []
    worker = threading.Thread(target=lambda: _capture(sink.flush, errors))
    worker.start()
    wait_until("the flush to take the batch", sink.in_flight_bytes, timeout_s=10, every_s=0.01)
    time.sleep(1.0)  # the point: a second of refused connections later, it is still retrying
    assert worker.is_alive(), "with retry_for=300 the flush must still be retrying"
    started = time.monotonic()
    sink.interrupt()
    worker.join(15)
    assert not worker.is_alive() and time.monotonic() - started < 12
    sink.close()
    assert len(errors) == 1 and isinstance(errors[0], TransientError)
    assert "shutting down with 1 record not indexed" in str(errors[0])


def _capture(call: Any, errors: list[BaseException]) -> None:
    try:
        call()
    except BaseException as exc:
        errors.append(exc)


# --- query templates ------------------------------------------------------------------------


def test_every_es_template_matches_its_sql_query() -> None:
    sql = load_catalog()
    names = sorted(p.stem for p in es_dirs()[-1].glob("*.json"))
    assert names == ["error_timeline", "errors", "journey", "slow"]
    for name in names:
        es = get_es_query(name)
        assert es.columns == sql[name].columns, name
        assert [p.describe() for p in es.params] == [p.describe() for p in sql[name].params], name


def test_substitution_is_structural() -> None:
    hostile = 'x"}},{"match_all":{}}'
    template = {
        "filter": [
            {"term": {"service": {"$param": "service"}}},
            {"$if": "user", "then": {"term": {"user_id": {"$param": "user"}}}},
        ],
        "range": {"gte": {"$param": "since"}},
    }
    out = substitute(template, {"service": hostile, "user": None, "since": datetime(2026, 1, 1, tzinfo=UTC)})
    assert out == {"filter": [{"term": {"service": hostile}}], "range": {"gte": "2026-01-01T00:00:00.000000Z"}}
    assert template["filter"][0] == {"term": {"service": {"$param": "service"}}}  # unchanged


def test_journey_order_matches_the_sql_rules() -> None:
    t = [datetime(2026, 1, 1, 0, 0, s, tzinfo=UTC) for s in range(6)]
    rows = [
        {"ts": t[3], "session_id": "s2", "request_id": "r3", "event_id": "e"},
        {"ts": t[0], "session_id": "s1", "request_id": "r1", "event_id": "a"},
        {"ts": t[4], "session_id": None, "request_id": "r9", "event_id": "f"},
        {"ts": t[2], "session_id": "s1", "request_id": "r1", "event_id": "c"},
        {"ts": t[1], "session_id": "s1", "request_id": "r2", "event_id": "b"},
    ]
    columns = get_es_query("journey").columns
    ordered = journey_order(rows, columns)
    assert [r[columns.index("ts")] for r in ordered] == [t[0], t[2], t[1], t[3], t[4]]
    assert [r[columns.index("request_id")] for r in ordered] == ["r1", "r1", "r2", "r3", "r9"]
