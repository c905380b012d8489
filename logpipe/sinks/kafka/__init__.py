"""Kafka sink (`--to kafka://HOST:PORT/TOPIC`): canonical records as JSON messages, acked before the checkpoint moves."""
