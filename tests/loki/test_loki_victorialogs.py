"""Against real VictoriaLogs: the real CLI pushes a real file, VictoriaLogs' own query API reads it back."""

from __future__ import annotations

import datetime as dt
import json
import socket
import uuid
from pathlib import Path

import pytest
from lokihelp import (
    expected_level,
    expected_metadata,
    ship_once,
    source_lines,
    ts_ns,
    vl_target,
    vl_wait,
    write_lines,
)

N = 3000


@pytest.mark.parametrize("encoding,options", [("protobuf", {}), ("json", {}), ("json", {"gzip": "true"})])
def test_every_record_arrives_with_labels_metadata_and_line(
    victorialogs: str, tmp_path: Path, encoding: str, options: dict[str, str]
) -> None:
    """Each source line is one entry: stream labels, structured metadata, time and line as computed here."""
    env = f"t{uuid.uuid4().hex[:10]}"
    records = source_lines(N, env)
    log = tmp_path / "app.log"
    write_lines(log, records)

    run = ship_once(log, tmp_path / "archive", vl_target(encoding, batch_entries="700", **options))
    assert run.code == 0, run.err
    assert f"pushed {N:,}" in run.err

    rows = vl_wait(f'{{env="{env}"}}', N)
    assert len(rows) == N
    host = socket.gethostname()
    by_seq = {json.loads(r["_msg"])["attrs"]["seq"]: r for r in rows}
    assert sorted(by_seq) == list(range(N))
    for rec in records:
        row = by_seq[rec["seq"]]
        labels = {"env": env, "host": host, "level": expected_level(rec["levelname"]), "service": rec["service"]}
        stream = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
        assert row["_stream"] == stream
        for name, value in expected_metadata(rec).items():
            assert row[name] == value, name
        if "request_id" not in rec:
            assert not {"request_id", "user_id", "session_id", "endpoint"} & set(row)
        stamp = dt.datetime.fromisoformat(row["_time"].replace("Z", "+00:00"))
        assert int(stamp.timestamp()) * 10**9 + stamp.microsecond * 1000 == ts_ns(rec)
        line = json.loads(row["_msg"])
        assert line["message"] == rec["message"]
        assert line["level"] == expected_level(rec["levelname"]).upper()
        assert line["attrs"] == {"seq": rec["seq"], "env": env}


def test_message_only_lines(victorialogs: str, tmp_path: Path) -> None:
    """line=message sends the message text alone as the line."""
    env = f"t{uuid.uuid4().hex[:10]}"
    records = source_lines(200, env)
    log = tmp_path / "app.log"
    write_lines(log, records)
    run = ship_once(log, tmp_path / "archive", vl_target("protobuf", line="message"))
    assert run.code == 0, run.err
    rows = vl_wait(f'{{env="{env}"}}', 200)
    assert sorted(r["_msg"] for r in rows) == sorted(r["message"] for r in records)
