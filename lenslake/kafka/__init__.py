"""Kafka ingestion: settings → librdkafka config, topics, the Confluent wire format, the producer, a test broker.

Events travel in four topics, one per event family (``FAMILIES``), keyed by the client's session id so that a
session's events stay in order within one partition. Values are Avro in the Confluent wire format
(``lenslake.kafka.wire``) with ids from the project's schema registry. The code speaks only the Kafka protocol
through ``confluent-kafka``: the broker may be Apache Kafka, Redpanda, or Tansu (the test and demo broker,
``lenslake.kafka.broker``). Heavy imports (confluent-kafka, fastavro) happen inside the functions that use them.
"""

from lenslake.kafka.config import (
    FAMILIES,
    FAMILY_OF_TYPE,
    KafkaNotConfigured,
    kafka_config,
    require_bootstrap,
    topic_of_type,
    topics,
)

__all__ = ["FAMILIES", "FAMILY_OF_TYPE", "KafkaNotConfigured", "kafka_config", "require_bootstrap", "topic_of_type",
           "topics"]
