"""The one settings object. Read it inside functions (``get_settings()``), never at import time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LENSLAKE_", extra="ignore")

    data_root: Path = Field(Path(".lenslake"), description="Where landing files, Delta tables, keys and Dagster's storage live.")
    engine: Literal["duckdb", "spark"] = Field("duckdb", description="duckdb: SQLFrame over in-process DuckDB; spark: PySpark.")
    spark_master: str = Field("local[*]", description="Spark master URL when spark_remote is not set.")
    spark_remote: str | None = Field(None, description="Spark Connect URL (sc://host:15002); wins over spark_master.")
    shuffle_partitions: int = Field(4, description="spark.sql.shuffle.partitions: small on one machine.")
    spark_driver_memory: str = Field("8g", description="spark.driver.memory for a local session (rows come back to the driver as Arrow).")
    duckdb_threads: int | None = Field(None, description="DuckDB threads (default: all cores).")
    token_key: SecretStr | None = Field(
        None, description="Production tokenization key as 'key_id:base64key'; default: a generated dev key file under the data root."
    )
    encryption_key: SecretStr | None = Field(
        None, description="Production encryption key as 'key_id:base64key' (32 bytes, AES-256-GCM); default: the dev key file."
    )
    key_file: Path | None = Field(None, description="Dev key file (default: <data_root>/keys/dev-keys.json, never committed).")
    landing_key: SecretStr | None = Field(
        None, description="Production key ring of raw landing files at rest (lenslake.privacy.landing), AES-256-GCM: "
                          "'key_id:base64key[,key_id:base64key...]', the first encrypts, every one decrypts (rotation); "
                          "default: a dev key file <data_root>/keys/landing-keys.json."
    )
    session_gap_minutes: int = Field(30, description="Inactivity gap that closes a session.")
    registry_dir: Path | None = Field(
        None, description="Avro schema registry directory (registry.json + subjects/); default: the one in the package, "
                          "lenslake/contracts/registry. Tests point it at a copy."
    )
    as_of: dt.datetime | None = Field(
        None, description="'Now' for freshness and retention (ISO date-time, UTC if no zone); default: the clock. Tests pin it."
    )
    # Kafka (lenslake.kafka): without a bootstrap, events come from landing files only.
    kafka_bootstrap: str | None = Field(
        None, description="Kafka bootstrap servers (host:port[,host:port]); set, it switches event ingestion to topics."
    )
    kafka_topic_prefix: str = Field("lenslake.events.", description="Prefix of every event topic name.")
    kafka_topic_clickstream: str = Field("clickstream", description="Topic (after the prefix) of page_view, product_view, "
                                                                    "search, scroll and time_on_page events.")
    kafka_topic_session: str = Field("session", description="Topic (after the prefix) of session_start and session_end.")
    kafka_topic_conversion: str = Field("conversion", description="Topic (after the prefix) of add_to_cart, "
                                                                  "remove_from_cart, wishlist_add, purchase and return.")
    kafka_topic_authentication: str = Field("authentication", description="Topic (after the prefix) of login, logout "
                                                                          "and failed_login.")
    kafka_partitions: int = Field(6, description="Partitions of each event topic (lenslake kafka init).")
    kafka_replication_factor: int = Field(1, description="Replication factor of each event topic (3 on a real cluster).")
    kafka_retention_ms: int = Field(7 * 24 * 3600 * 1000, description="retention.ms of each event topic (default 7 days).")
    kafka_consumer_group: str = Field("lenslake-bronze", description="Consumer group of the bronze ingest.")
    kafka_ingest_chunk_messages: int = Field(500_000, description="Messages per bronze commit of a Kafka ingest run "
                                                                  "(bounds its memory; each commit records positions; "
                                                                  "each chunk costs about 0.5 s of fixed work).")
    kafka_decode_processes: int = Field(1, description="Processes decoding Avro (arrow-avro) beside the ingest (0: "
                                                      "decode record by record in the ingest process).")
    kafka_parallel_decode_min_messages: int = Field(50_000, description="Runs with fewer messages decode in the "
                                                                        "ingest process (a process start costs more).")
    kafka_decode_timeout_seconds: float = Field(60.0, description="A decoder process silent this long on one chunk "
                                                "is stopped and the chunk decoded record by record instead.")
    kafka_lag_threshold: int = Field(10_000, description="kafka_lag_sensor starts an ingest run when the group's lag "
                                                         "(all event topics) reaches this many messages.")
    kafka_max_interval_minutes: int = Field(15, description="…and at least this often while the lag is above zero.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="librdkafka security.protocol."
    )
    kafka_ssl_ca_location: Path | None = Field(None, description="CA certificate (PEM) that signs the brokers' certificates.")
    kafka_ssl_certificate_location: Path | None = Field(None, description="Client certificate (PEM), for mutual TLS.")
    kafka_ssl_key_location: Path | None = Field(None, description="Client private key (PEM), for mutual TLS.")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism (with a SASL_* protocol)."
    )
    kafka_sasl_username: SecretStr | None = Field(None, description="SASL username.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password.")
    # Embeddings and vector store (lenslake.vectors).
    vectors_dir: Path | None = Field(None, description="LanceDB database directory (default: <data_root>/vectors).")
    embedding_model_version: str = Field(
        "minilm-l6-v2@bf16", description="Model version the pipeline embeds and publishes: '<model>@<variant>[+<template>]', "
                                         "variant fp32 (reference) or bf16 (fast path, passes the quality gate)."
    )
    embedding_live_versions: str = Field(
        "", description="Comma-separated further model versions kept live beside the published one (A/B), "
                        "e.g. 'minilm-l6-v2@fp32'."
    )
    embedding_routing_file: Path | None = Field(None, description="Experiments routing subjects to vector model "
                                                              "versions (default: lenslake/vectors/routing.yaml).")
    embedding_batch_size: int = Field(32, description="Texts per encode batch (sentence-transformers' default).")
    embedding_max_seq_length: int = Field(64, description="Token limit of the embedded text (the model slows past ~64).")
    vectors_index_min_rows: int = Field(5000, description="Build the ANN index once a vector table holds this many rows.")
    vectors_keep_publishes: int = Field(5, description="Publish tags kept by cleanup (pinned tags are always kept).")
    vectors_cleanup_grace_minutes: int = Field(60, description="Versions younger than this are never removed by cleanup.")
    user_embedding_half_life_days: float = Field(30.0, description="Half-life of an engagement's weight in a user embedding.")
    product_segments: int = Field(16, description="k of the k-means product segments.")
    user_segments: int = Field(8, description="k of the k-means user segments.")
    # The product database (lenslake.catalog).
    myntra_dir: Path = Field(Path("../shared/data/myntra_catalog"), description="The real Myntra catalogue "
                             "(styles.csv, styles_text.csv) that `lenslake catalog import-myntra` maps into the catalog.")

    # Retention, erasure and access control (lenslake.privacy.retention / erasure / access).
    retention_vacuum_hours: int = Field(168, description="Vacuum window of the retention purge: files a purge removed "
                                                         "stay this long (readers of older versions), then go.")
    retention_overrides: str = Field("", description="Per-table retention in days overriding the catalogue, "
                                                     "'table=days,...' (e.g. 'bronze.events=30,bronze.events_quarantine=14').")
    suppression_key: SecretStr | None = Field(
        None, description="Key of the erasure suppression list as 'key_id:base64key' (never the token key); default: "
                          "a dev key file <data_root>/keys/suppression-key.json."
    )
    access_policy_file: Path | None = Field(None, description="Role × table × column access policy (default: "
                                                              "lenslake/privacy/policy.yaml).")
    # The read API (lenslake.api, `lenslake api`).
    api_keys: SecretStr | None = Field(
        None, description="Production API keys as 'name:role:key[,name:role:key…]' (role: one of the access policy's "
                          "roles); default: a dev key file with one generated key per role under the data root."
    )
    api_key_file: Path | None = Field(None, description="Dev API key file (default: <data_root>/keys/api-keys.json, "
                                                        "never committed).")

    def now(self) -> dt.datetime:
        """The platform's 'now': ``as_of`` when set, else the clock; always timezone-aware UTC."""
        if self.as_of is None:
            return dt.datetime.now(dt.timezone.utc)
        return self.as_of if self.as_of.tzinfo else self.as_of.replace(tzinfo=dt.timezone.utc)

    @property
    def landing_dir(self) -> Path:
        return self.data_root / "landing"

    @property
    def events_landing_dir(self) -> Path:
        return self.landing_dir / "events"

    @property
    def tables_dir(self) -> Path:
        return self.data_root / "tables"

    @property
    def synth_dir(self) -> Path:
        return self.data_root / "synth"

    @property
    def dagster_home(self) -> Path:
        return self.data_root / "dagster"

    @property
    def resolved_key_file(self) -> Path:
        return self.key_file or self.data_root / "keys" / "dev-keys.json"


def get_settings(**overrides) -> Settings:
    """A fresh settings object from the environment (plus explicit overrides, for tests and the CLI)."""
    return Settings(**overrides)
