"""JSON schemas of the custom resources deploy/k8s uses (Strimzi, KEDA): the fields we set, typed, nothing else.

No PyPI package ships the Strimzi CRD schemas (the operator publishes them only in its release YAML), and the
KEDA one comes only as cloudcoil-models-keda, pydantic models inside a whole Kubernetes client framework. So
these are written from the Strimzi v1beta2 and KEDA v1alpha1 API references, for the fields this project sets:
required fields, types, enums and value formats, with additionalProperties false so a misspelt field fails.
"""

from __future__ import annotations

from typing import Any

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
SCALAR = {"type": ["string", "integer", "number", "boolean"]}
QUANTITY = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"}
RESOURCES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "requests": {"type": "object", "additionalProperties": QUANTITY},
        "limits": {"type": "object", "additionalProperties": QUANTITY},
    },
}


def _resource(api_version: str, kind: str, spec: dict[str, Any], cluster_label: bool = False) -> dict[str, Any]:
    labels: dict[str, Any] = dict(STRING_MAP)
    if cluster_label:
        # Strimzi only reconciles node pools and topics labelled with their Kafka cluster's name.
        labels = {**labels, "required": ["strimzi.io/cluster"]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": {
                "type": "object",
                "required": ["name", *(["labels"] if cluster_label else [])],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": DNS_LABEL, "maxLength": 63},
                    "namespace": {"type": "string", "pattern": DNS_LABEL},
                    "labels": labels,
                    "annotations": STRING_MAP,
                },
            },
            "spec": spec,
        },
    }


_LISTENER = {
    "type": "object",
    "required": ["name", "port", "type", "tls"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]{1,11}$"},
        "port": {"type": "integer", "minimum": 9092, "not": {"enum": [9404, 9999]}},
        "type": {"enum": ["internal", "route", "loadbalancer", "nodeport", "ingress", "cluster-ip"]},
        "tls": {"type": "boolean"},
    },
}

KAFKA = _resource(
    "kafka.strimzi.io/v1beta2",
    "Kafka",
    {
        "type": "object",
        "required": ["kafka"],
        "additionalProperties": False,
        "properties": {
            "kafka": {
                "type": "object",
                "required": ["listeners"],
                "additionalProperties": False,
                "properties": {
                    "version": {"type": "string", "pattern": r"^[0-9]+\.[0-9]+\.[0-9]+$"},
                    "metadataVersion": {"type": "string", "pattern": r"^[0-9]+\.[0-9]+-IV[0-9]+$"},
                    "listeners": {"type": "array", "minItems": 1, "items": _LISTENER},
                    "config": {"type": "object", "additionalProperties": SCALAR},
                },
            },
            "entityOperator": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"topicOperator": {"type": "object"}, "userOperator": {"type": "object"}},
            },
        },
    },
)

_VOLUME = {
    "type": "object",
    "required": ["type"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "integer", "minimum": 0},
        "type": {"enum": ["persistent-claim", "ephemeral"]},
        "size": QUANTITY,
        "class": {"type": "string"},
        "deleteClaim": {"type": "boolean"},
        "kraftMetadata": {"enum": ["shared"]},
    },
}

KAFKA_NODE_POOL = _resource(
    "kafka.strimzi.io/v1beta2",
    "KafkaNodePool",
    {
        "type": "object",
        "required": ["replicas", "roles", "storage"],
        "additionalProperties": False,
        "properties": {
            "replicas": {"type": "integer", "minimum": 1},
            "roles": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": ["controller", "broker"]}},
            "storage": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["type", "volumes"],
                        "additionalProperties": False,
                        "properties": {
                            "type": {"const": "jbod"},
                            "volumes": {
                                "type": "array",
                                "minItems": 1,
                                "items": {**_VOLUME, "required": ["id", "type"]},
                            },
                        },
                    },
                    _VOLUME,
                ]
            },
            "resources": RESOURCES,
        },
    },
    cluster_label=True,
)

KAFKA_TOPIC = _resource(
    "kafka.strimzi.io/v1beta2",
    "KafkaTopic",
    {
        "type": "object",
        "required": ["partitions", "replicas"],
        "additionalProperties": False,
        "properties": {
            "topicName": {"type": "string", "pattern": r"^[A-Za-z0-9._-]{1,249}$"},
            "partitions": {"type": "integer", "minimum": 1},
            "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
            "config": {"type": "object", "additionalProperties": SCALAR},
        },
    },
    cluster_label=True,
)

_KAFKA_TRIGGER_METADATA = {
    "required": ["bootstrapServers", "consumerGroup", "topic", "lagThreshold"],
    "properties": {
        "lagThreshold": {"pattern": r"^[0-9]+$"},
        "offsetResetPolicy": {"enum": ["earliest", "latest"]},
        "allowIdleConsumers": {"enum": ["true", "false"]},
    },
}

SCALED_OBJECT = _resource(
    "keda.sh/v1alpha1",
    "ScaledObject",
    {
        "type": "object",
        "required": ["scaleTargetRef", "triggers"],
        "additionalProperties": False,
        "properties": {
            "scaleTargetRef": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "kind": {"type": "string"},
                    "apiVersion": {"type": "string"},
                },
            },
            "minReplicaCount": {"type": "integer", "minimum": 0},
            "maxReplicaCount": {"type": "integer", "minimum": 1},
            "pollingInterval": {"type": "integer", "minimum": 1},
            "cooldownPeriod": {"type": "integer", "minimum": 0},
            "advanced": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "restoreToOriginalReplicaCount": {"type": "boolean"},
                    "horizontalPodAutoscalerConfig": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"name": {"type": "string"}, "behavior": {"type": "object"}},
                    },
                },
            },
            "triggers": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["type", "metadata"],
                    "additionalProperties": False,
                    "properties": {
                        "type": {"type": "string"},
                        "name": {"type": "string"},
                        # KEDA's trigger metadata is map[string]string: a bare number here is rejected.
                        "metadata": STRING_MAP,
                        "authenticationRef": {"type": "object", "required": ["name"]},
                    },
                    "if": {"properties": {"type": {"const": "kafka"}}},
                    "then": {"properties": {"metadata": _KAFKA_TRIGGER_METADATA}},
                },
            },
        },
    },
)

CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    (s["properties"]["apiVersion"]["const"], s["properties"]["kind"]["const"]): s
    for s in (KAFKA, KAFKA_NODE_POOL, KAFKA_TOPIC, SCALED_OBJECT)
}
