"""From the one settings object to what librdkafka and the topic layout need."""

from __future__ import annotations

FAMILIES: dict[str, tuple[str, ...]] = {
    "clickstream": ("page_view", "product_view", "search", "scroll", "time_on_page"),
    "session": ("session_start", "session_end"),
    "conversion": ("add_to_cart", "remove_from_cart", "wishlist_add", "purchase", "return"),
    "authentication": ("login", "logout", "failed_login"),
}
FAMILY_OF_TYPE: dict[str, str] = {t: family for family, types in FAMILIES.items() for t in types}


class KafkaNotConfigured(RuntimeError):
    """No ``LENSLAKE_KAFKA_BOOTSTRAP``: events come from landing files only."""


def require_bootstrap(settings) -> str:
    if not settings.kafka_bootstrap:
        raise KafkaNotConfigured("Kafka is not configured: set LENSLAKE_KAFKA_BOOTSTRAP (e.g. localhost:9092)")
    return settings.kafka_bootstrap


def client_logger():
    """Where librdkafka's own log lines go: a Python logger (``lenslake.kafka.client``) instead of stderr. An
    unreachable broker otherwise fills the terminal with a connection-refused line every few milliseconds (583
    lines before ``lenslake kafka status`` gave up); failures still reach the caller as errors, and a run's
    logging configuration can still show these lines."""
    import logging

    log = logging.getLogger("lenslake.kafka.client")
    if not log.handlers:
        log.addHandler(logging.NullHandler())  # (without any handler, Python would print them to stderr)
    return log


def unreachable(settings, error: Exception) -> str | None:
    """One line for a user when ``error`` says the broker could not be reached (else None)."""
    from confluent_kafka import KafkaError, KafkaException

    if not isinstance(error, KafkaException) or not error.args or not isinstance(error.args[0], KafkaError):
        return None
    code = error.args[0].code()
    if code not in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT,
                    KafkaError._SSL, KafkaError._AUTHENTICATION):
        return None
    return (f"cannot reach the Kafka broker at {settings.kafka_bootstrap} ({error.args[0].str()}): is it running, "
            f"and are LENSLAKE_KAFKA_BOOTSTRAP and the security settings ({settings.kafka_security_protocol}) right?")


def topics(settings) -> dict[str, str]:
    """{family: topic name} of these settings."""
    return {family: settings.kafka_topic_prefix + getattr(settings, f"kafka_topic_{family}") for family in FAMILIES}


def topic_of_type(settings) -> dict[str, str]:
    """{event type: topic name}."""
    by_family = topics(settings)
    return {t: by_family[family] for t, family in FAMILY_OF_TYPE.items()}


def kafka_config(settings, **extra) -> dict:
    """The librdkafka configuration common to producers, consumers and the admin client (plus ``extra``).

    Only connection and security settings: what a client role needs (idempotence, group id, …) is added by the
    code that creates it. Secrets are unwrapped here and nowhere else.
    """
    conf: dict = {"bootstrap.servers": require_bootstrap(settings),
                  "security.protocol": settings.kafka_security_protocol.lower(), "logger": client_logger()}
    if settings.kafka_ssl_ca_location:
        conf["ssl.ca.location"] = str(settings.kafka_ssl_ca_location)
    if settings.kafka_ssl_certificate_location:
        conf["ssl.certificate.location"] = str(settings.kafka_ssl_certificate_location)
    if settings.kafka_ssl_key_location:
        conf["ssl.key.location"] = str(settings.kafka_ssl_key_location)
    if settings.kafka_sasl_mechanism:
        conf["sasl.mechanism"] = settings.kafka_sasl_mechanism
    if settings.kafka_sasl_username:
        conf["sasl.username"] = settings.kafka_sasl_username.get_secret_value()
    if settings.kafka_sasl_password:
        conf["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    return conf | extra
