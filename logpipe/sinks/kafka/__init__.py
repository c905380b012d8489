"""Kafka sink (`--to kafka://HOST:PORT/TOPIC`): canonical records as JSON messages, acked before the checkpoint moves.

config   KafkaConfig from a kafka:// URL (SASL credentials from the environment); secrets masked
encode   canonical records -> messages (key, value, headers), per record or per batch (pure)
sink     KafkaSink: idempotent producer, retry until acknowledged, too-large messages dead-lettered
health   do the brokers answer, does the topic exist
deps     the client and the codecs it needs (`pip install 'logpipe[kafka]'`)
"""
