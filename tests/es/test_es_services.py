"""scripts/services itself: every service starts healthy, `run` stops only what it started.

Kafka and VictoriaLogs serve later issues (a Kafka sink, Loki's push protocol); this keeps
`scripts/services up kafka|victorialogs` working in the meantime. Health is checked here with
the protocol each one speaks, not just an open port.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import urllib.request

import pytest

from tests.support.services import SERVICES, running, url

# scripts/services itself is under test: no fixture, the servers all the same.
pytestmark = [pytest.mark.slow, pytest.mark.services]


def kafka_api_versions(port: int) -> int:
    """Send a Kafka ApiVersions v0 request; return the error code of the answer (0: a broker)."""
    client = b"logpipe-test"
    body = struct.pack(">hhih", 18, 0, 7, len(client)) + client
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", sock.recv(4))[0]
        data = b""
        while len(data) < size:
            data += sock.recv(size - len(data))
    correlation, error = struct.unpack(">ih", data[:6])
    assert correlation == 7
    return int(error)


def test_kafka_speaks_kafka_and_victorialogs_takes_a_loki_push() -> None:
    """Start what is not running, talk to each in its own protocol, stop exactly what was started."""
    started = [name for name in ("kafka", "victorialogs") if not running(name)]
    try:
        up = subprocess.run([str(SERVICES), "up", "kafka", "victorialogs"], capture_output=True, text=True, timeout=900)
        assert up.returncode == 0, up.stderr[-3000:]
        assert kafka_api_versions(int(url("kafka").rsplit(":", 1)[1])) == 0
        push = {"streams": [{"stream": {"app": "logpipe-test"}, "values": [["1700000000000000000", "hello"]]}]}
        request = urllib.request.Request(
            url("victorialogs") + "/insert/loki/api/v1/push",
            method="POST",
            data=json.dumps(push).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status in (200, 204)
    finally:
        if started:
            subprocess.run([str(SERVICES), "down", *started], capture_output=True, text=True, timeout=300)
    for name in started:
        assert not running(name)


def test_run_stops_only_what_it_started() -> None:
    before = running("opensearch-tiny")
    result = subprocess.run(
        [str(SERVICES), "run", "opensearch-tiny", "--", "bash", "-c", "exit 3"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 3, result.stderr[-3000:]
    assert running("opensearch-tiny") == before


def test_status_lists_every_service() -> None:
    out = subprocess.run([str(SERVICES), "status"], capture_output=True, text=True, check=True).stdout
    names = [line.split()[0] for line in out.splitlines()]
    assert names == ["opensearch", "opensearch-tiny", "elasticsearch", "kafka", "victorialogs"]


def test_unknown_service_is_refused() -> None:
    result = subprocess.run([str(SERVICES), "up", "mongodb"], capture_output=True, text=True)
    assert result.returncode != 0 and "unknown service" in result.stderr
