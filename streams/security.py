"""Kafka security settings (TLS, SASL/SCRAM) turned into each client library's arguments; secrets stay secret."""

from __future__ import annotations

import ssl
from typing import Any

import faust

from streams.settings import KafkaSettings


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """Return a TLS context for SSL/SASL_SSL (system CAs unless CITY_KAFKA__SSL_CAFILE is set), else None."""
    if not kafka.security_protocol.endswith("SSL"):
        return None
    context = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    if kafka.ssl_certfile:
        context.load_cert_chain(str(kafka.ssl_certfile), str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None)
    return context


def _password(kafka: KafkaSettings) -> str | None:
    return kafka.sasl_password.get_secret_value() if kafka.sasl_password else None


def kafka_python_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Return the security keyword arguments of kafka-python's producer, consumer and admin clients."""
    options: dict[str, Any] = {"security_protocol": kafka.security_protocol}
    if kafka.security_protocol.startswith("SASL"):
        options |= {
            "sasl_mechanism": kafka.sasl_mechanism,
            "sasl_plain_username": kafka.sasl_username,
            "sasl_plain_password": _password(kafka),
        }
    if kafka.security_protocol.endswith("SSL"):
        options |= {
            "ssl_cafile": str(kafka.ssl_cafile) if kafka.ssl_cafile else None,
            "ssl_certfile": str(kafka.ssl_certfile) if kafka.ssl_certfile else None,
            "ssl_keyfile": str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None,
        }
    return options


def aiokafka_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Return the security keyword arguments of aiokafka's clients."""
    options: dict[str, Any] = {"security_protocol": kafka.security_protocol, "ssl_context": ssl_context(kafka)}
    if kafka.security_protocol.startswith("SASL"):
        options |= {
            "sasl_mechanism": kafka.sasl_mechanism,
            "sasl_plain_username": kafka.sasl_username,
            "sasl_plain_password": _password(kafka),
        }
    return options


def faust_credentials(kafka: KafkaSettings) -> faust.types.auth.CredentialsT | None:
    """Return Faust's broker credentials for the settings (None for PLAINTEXT)."""
    if kafka.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=_password(kafka),
            mechanism=kafka.sasl_mechanism,
            ssl_context=ssl_context(kafka),
        )
    context = ssl_context(kafka)
    return faust.SSLCredentials(context) if context is not None else None
