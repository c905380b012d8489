"""The Kafka sink sorts its client's errors by type: refused (dead-letter the message), terminal
(fail the flush at once), transient (retry). Real aiokafka error classes, no broker needed."""

from __future__ import annotations

from typing import Any

import aiokafka.errors as kerr
import pytest

from logpipe.errors import LogpipeError, MissingDependencyError, TerminalError, TransientError
from logpipe.sinks.kafka.config import parse_kafka_url
from logpipe.sinks.kafka.encode import Messages
from logpipe.sinks.kafka.sink import KafkaSink, MessageRefused, kafka_error
from logpipe.sinks.retry import transient


class TestKafkaError:
    @pytest.mark.parametrize(
        "cls", [kerr.MessageSizeTooLargeError, kerr.RecordTooLargeError, kerr.RecordListTooLargeError]
    )
    def test_too_large_is_refused_for_that_message(self, cls: type[Exception]) -> None:
        error = kafka_error(cls())
        assert isinstance(error, MessageRefused) and not transient(error)

    @pytest.mark.parametrize(
        "cls",
        [
            kerr.TopicAuthorizationFailedError,
            kerr.InvalidTopicError,
            kerr.UnsupportedCodecError,
            kerr.SaslAuthenticationFailed,
        ],
    )
    def test_a_setting_no_retry_can_fix_is_terminal(self, cls: type[Exception]) -> None:
        error = kafka_error(cls())
        assert isinstance(error, TerminalError) and not isinstance(error, MessageRefused) and not transient(error)

    @pytest.mark.parametrize(
        "exc",
        [
            kerr.KafkaConnectionError(),
            kerr.KafkaTimeoutError(),
            kerr.RequestTimedOutError(),
            kerr.NotLeaderForPartitionError(),
            kerr.OutOfOrderSequenceNumber(),
            ConnectionResetError(),
            TimeoutError(),
        ],
    )
    def test_outages_are_transient(self, exc: Exception) -> None:
        """aiokafka marks KafkaTimeoutError not retriable; for a sink a timeout is an outage."""
        assert transient(kafka_error(exc))

    def test_a_missing_module_or_a_bug_is_terminal(self) -> None:
        assert not transient(kafka_error(ModuleNotFoundError("No module named 'aiokafka'")))
        assert not transient(kafka_error(TypeError("bad argument")))
        assert not transient(MissingDependencyError("x")) and transient(TransientError("x"))
        assert not transient(RuntimeError("not logpipe's"))  # only logpipe's errors say "try again"


class TestDeliverDecidesByType:
    def _sink(self, monkeypatch: pytest.MonkeyPatch, raises: Exception) -> tuple[KafkaSink, list[int]]:
        sink = KafkaSink(parse_kafka_url("kafka://127.0.0.1:1/t"), dead_letters=lambda batch: None)
        rounds: list[int] = []

        async def produce(messages: Messages, indices: list[int], alone: set[int]) -> Any:
            rounds.append(len(indices))
            raise raises

        monkeypatch.setattr(sink, "_produce", produce)
        monkeypatch.setattr("logpipe.sinks.retry.backoff_s", lambda attempt, cap: 0.0)
        return sink, rounds

    def test_terminal_error_is_raised_after_one_round(self, monkeypatch: pytest.MonkeyPatch) -> None:
        sink, rounds = self._sink(monkeypatch, kerr.TopicAuthorizationFailedError())
        try:
            with pytest.raises(TerminalError, match="TopicAuthorizationFailed"):
                sink._deliver(Messages([None], [b"{}"], [[]], [[0]]))
        finally:
            sink.close()
        assert rounds == [1]

    def test_transient_error_is_retried_until_interrupted(self, monkeypatch: pytest.MonkeyPatch) -> None:
        sink, rounds = self._sink(monkeypatch, kerr.KafkaConnectionError())
        real_reset = sink._reset_producer

        def reset() -> None:
            real_reset()
            if len(rounds) >= 3:
                sink.interrupt()

        monkeypatch.setattr(sink, "_reset_producer", reset)
        try:
            with pytest.raises(LogpipeError) as caught:
                sink._deliver(Messages([None], [b"{}"], [[]], [[0]]))
        finally:
            sink.close()
        assert caught.value.transient and len(rounds) == 3
