"""deploy/k8s: every manifest validates offline, and the files agree with each other and with the code."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate.utils import latest_version
from referencing import Registry, Resource

from citystream.cli import build_parser
from streams.models import Domain
from streams.topics import Topics
from tests.deploy.crd_schemas import CRD_SCHEMAS
from tests.deploy.manifests import (
    DEPLOY,
    K8S,
    load_k8s_documents,
    load_kustomization,
    parse_dockerfile,
    project_image,
    setting_names,
    settings_from_env,
)

DOCS = load_k8s_documents()
KUSTOMIZATION = load_kustomization()
# The oldest Kubernetes these manifests target and the newest kubernetes-validate knows.
K8S_VERSIONS = ["1.29.0", latest_version()]
CORE_KINDS = {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "StatefulSet", "PodDisruptionBudget"}
CRD_KINDS = {"Kafka", "KafkaNodePool", "KafkaTopic", "ScaledObject"}


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    """Return the only resource of a kind (and name)."""
    found = [d for _, d in DOCS if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def all_of(kind: str) -> list[dict[str, Any]]:
    """Return every resource of a kind."""
    return [d for _, d in DOCS if d["kind"] == kind]


def config_env() -> dict[str, str]:
    """Return the CITY_* environment a citystream pod gets: the ConfigMap and the Secret's stringData."""
    return {**one("ConfigMap")["data"], **one("Secret")["stringData"]}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    """Return the single container of a Deployment."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    first: dict[str, Any] = containers[0]
    return first


def citystream_deployments() -> list[dict[str, Any]]:
    """Return the Deployments that run the citystream image."""
    return [d for d in all_of("Deployment") if container(d)["image"].split(":")[0].endswith("citystream")]


WORKER = one("Deployment", "citystream-worker")
API = one("Deployment", "citystream-api")


def test_the_kustomization_lists_every_manifest() -> None:
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(KUSTOMIZATION["resources"]) == on_disk
    assert {d["kind"] for _, d in DOCS} == CORE_KINDS | CRD_KINDS


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(("file", "doc"), [(f, d) for f, d in DOCS if d["kind"] in CORE_KINDS], ids=lambda v: v)
def test_core_resources_validate_strictly_against_the_kubernetes_schema(
    file: str, doc: dict[str, Any], version: str
) -> None:
    # kubernetes-validate bundles the Kubernetes JSON schemas; strict forbids fields the API does not have.
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{file}: {doc['kind']}/{doc['metadata']['name']}: {'.'.join(map(str, exc.path))}: {exc.message}")


@pytest.mark.parametrize(("file", "doc"), [(f, d) for f, d in DOCS if d["kind"] in CRD_KINDS], ids=lambda v: v)
def test_custom_resources_validate_against_their_schemas(file: str, doc: dict[str, Any]) -> None:
    schema = CRD_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
    assert schema is not None, f"{file}: no schema for {doc['apiVersion']} {doc['kind']}"
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    assert not errors, f"{file}: " + "; ".join(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_autoscaling_behaviour_is_a_valid_hpa_behaviour() -> None:
    # KEDA passes it to the HPA it creates, so the Kubernetes autoscaling/v2 schema applies.
    root = files("kubernetes_validate") / "kubernetes-json-schema" / f"v{latest_version()}-local-strict"
    schema = json.loads((root / "horizontalpodautoscalerbehavior-autoscaling-v2.json").read_text())
    registry: Registry[Any] = Resource.from_contents(json.loads((root / "_definitions.json").read_text())) @ Registry()
    behavior = one("ScaledObject")["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    jsonschema.Draft202012Validator(schema, registry=registry).validate(behavior)


def test_everything_lives_in_the_one_namespace() -> None:
    namespace = one("Namespace")["metadata"]["name"]
    assert KUSTOMIZATION["namespace"] == namespace
    for file, doc in DOCS:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, f"{file}: {doc['kind']}/{doc['metadata']['name']}"


def test_kafka_topics_are_the_topics_the_code_uses() -> None:
    names = [t["spec"].get("topicName", t["metadata"]["name"]) for t in all_of("KafkaTopic")]
    assert sorted(names) == sorted(Topics().all)
    cluster = one("Kafka")["metadata"]["name"]
    assert {t["metadata"]["labels"]["strimzi.io/cluster"] for t in all_of("KafkaTopic")} == {cluster}
    assert {p["metadata"]["labels"]["strimzi.io/cluster"] for p in all_of("KafkaNodePool")} == {cluster}


def topic(name: str) -> dict[str, Any]:
    """Return the KafkaTopic of a topic name."""
    (found,) = [t for t in all_of("KafkaTopic") if t["spec"].get("topicName", t["metadata"]["name"]) == name]
    return found


def test_topics_keep_sensor_data_a_week_and_dead_letters_a_month() -> None:
    day_ms = 86_400_000
    topics = Topics()
    for name in (topics.traffic, topics.drone, topics.energy):
        assert int(topic(name)["spec"]["config"]["retention.ms"]) == 7 * day_ms, name
    assert int(topic(topics.deadletter)["spec"]["config"]["retention.ms"]) == 30 * day_ms
    for t in all_of("KafkaTopic"):
        assert "retention.ms" in t["spec"]["config"], t["metadata"]["name"]


def test_topics_are_created_the_same_way_by_strimzi_and_by_citystream() -> None:
    settings = config_env()
    brokers = sum(p["spec"]["replicas"] for p in all_of("KafkaNodePool") if "broker" in p["spec"]["roles"])
    for t in all_of("KafkaTopic"):
        spec = t["spec"]
        assert spec["partitions"] == int(settings["CITY_KAFKA__PARTITIONS"]), t["metadata"]["name"]
        assert spec["replicas"] == int(settings["CITY_KAFKA__REPLICATION_FACTOR"]) <= brokers, t["metadata"]["name"]
        assert int(spec["config"]["min.insync.replicas"]) < spec["replicas"], "one broker down must not stop writes"


def test_workers_never_outnumber_the_partitions() -> None:
    partitions = min(t["spec"]["partitions"] for t in all_of("KafkaTopic"))
    scaled = one("ScaledObject")["spec"]
    assert 1 <= WORKER["spec"]["replicas"] <= partitions
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"] <= partitions


def test_keda_scales_the_worker_on_the_lag_of_its_consumer_group(monkeypatch: pytest.MonkeyPatch) -> None:
    scaled = one("ScaledObject")["spec"]
    assert scaled["scaleTargetRef"]["name"] == WORKER["metadata"]["name"]
    settings = settings_from_env(monkeypatch, config_env())
    topics = Topics(settings.kafka.topic_namespace)
    triggers = [t["metadata"] for t in scaled["triggers"] if t["type"] == "kafka"]
    assert sorted(t["topic"] for t in triggers) == sorted(topics.for_domain(d) for d in Domain)
    for trigger in triggers:
        assert trigger["consumerGroup"] == settings.worker.group_id == "citystream-worker"
        assert trigger["bootstrapServers"] == settings.kafka.bootstrap_servers


def test_config_map_and_secret_hold_only_real_settings_and_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    config, secret = one("ConfigMap")["data"], one("Secret")["stringData"]
    unknown = (set(config) | set(secret)) - setting_names()
    assert not unknown, f"no such setting in streams.settings.Settings: {sorted(unknown)}"
    assert "CITY_REDIS__URL" in secret and "CITY_REDIS__URL" not in config, "the Redis URL may carry a password"
    settings = settings_from_env(monkeypatch, config_env())
    assert settings.environment == "production"
    assert settings.api.host == "0.0.0.0"


def test_pods_get_the_config_map_and_the_secret() -> None:
    for deployment in citystream_deployments():
        refs = container(deployment)["envFrom"]
        assert {r["configMapRef"]["name"] for r in refs if "configMapRef" in r} == {
            one("ConfigMap")["metadata"]["name"]
        }
        assert {r["secretRef"]["name"] for r in refs if "secretRef" in r} == {one("Secret")["metadata"]["name"]}


def test_settings_point_at_the_kafka_bootstrap_and_redis_services() -> None:
    settings = config_env()
    kafka = one("Kafka")
    plain_ports = {listener["port"] for listener in kafka["spec"]["kafka"]["listeners"] if not listener["tls"]}
    namespace = one("Namespace")["metadata"]["name"]
    for server in settings["CITY_KAFKA__BOOTSTRAP_SERVERS"].split(","):
        host, _, port = server.rpartition(":")
        assert host.split(".")[:2] == [f"{kafka['metadata']['name']}-kafka-bootstrap", namespace], host
        assert int(port) in plain_ports
    redis_url = urlsplit(settings["CITY_REDIS__URL"])
    service = one("Service", "redis")
    assert (redis_url.hostname or "").split(".")[:2] == [service["metadata"]["name"], namespace]
    assert (redis_url.port or 6379) in {p["port"] for p in service["spec"]["ports"]}


def test_redis_is_a_stateful_set_on_a_persistent_volume_behind_its_service() -> None:
    redis, service = one("StatefulSet", "redis"), one("Service", "redis")
    assert redis["spec"]["serviceName"] == service["metadata"]["name"]
    mounts = {m["name"] for m in redis["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert {c["metadata"]["name"] for c in redis["spec"]["volumeClaimTemplates"]} & mounts
    assert service["spec"]["selector"].items() <= redis["spec"]["template"]["metadata"]["labels"].items()
    assert "noeviction" in redis["spec"]["template"]["spec"]["containers"][0]["args"]


def resolve_port(spec: dict[str, Any], port: int | str) -> int:
    """Return the container port a probe or Service names (by number or by port name)."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in spec["ports"] if p.get("name") == port]
    return int(number)


def test_api_probes_hit_health_on_the_container_port() -> None:
    spec = container(API)
    port = int(config_env()["CITY_API__PORT"])
    assert [p["containerPort"] for p in spec["ports"]] == [port]
    for probe in ("readinessProbe", "livenessProbe"):
        get = spec[probe]["httpGet"]
        assert get["path"] == "/health", probe
        assert resolve_port(spec, get["port"]) == port, probe


def test_api_liveness_rides_out_a_short_kafka_outage() -> None:
    spec = container(API)
    live, ready = spec["livenessProbe"], spec["readinessProbe"]
    tolerated_s = live["periodSeconds"] * live["failureThreshold"]
    assert tolerated_s >= 120, f"liveness restarts the API after {tolerated_s} s of a Kafka or Redis outage"
    assert tolerated_s > ready["periodSeconds"] * ready["failureThreshold"]


def test_api_service_reaches_the_api_pods() -> None:
    service = one("Service", "citystream-api")
    assert service["spec"]["selector"].items() <= API["spec"]["template"]["metadata"]["labels"].items()
    port = int(config_env()["CITY_API__PORT"])
    assert [resolve_port(container(API), p["targetPort"]) for p in service["spec"]["ports"]] == [port]


def test_selectors_match_their_pods() -> None:
    for kind in ("Deployment", "StatefulSet"):
        for workload in all_of(kind):
            selector = workload["spec"]["selector"]["matchLabels"]
            assert selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()
    pdb = one("PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= WORKER["spec"]["template"]["metadata"]["labels"].items()


def test_worker_has_no_http_probes_and_stops_gracefully() -> None:
    spec = container(WORKER)
    assert "ports" not in spec, "the worker serves no port"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert "httpGet" not in spec.get(probe, {}), f"{probe}: the worker has no HTTP endpoint"
    assert WORKER["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30


@pytest.mark.parametrize("name", ["citystream-worker", "citystream-api"])
def test_citystream_pods_have_resources_and_run_real_commands_as_the_image_user(name: str) -> None:
    deployment = one("Deployment", name)
    spec = container(deployment)
    assert spec["resources"]["requests"] and spec["resources"]["limits"]
    build_parser().parse_args(spec["args"])
    uid = int(parse_dockerfile((DEPLOY / "Dockerfile").read_text())[-1].all("USER")[-1].split(":")[0])
    pod = deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == uid


def test_one_image_tag_everywhere() -> None:
    image = project_image()
    assert {container(d)["image"] for d in citystream_deployments()} == {image}
    name, tag = image.split(":")
    (entry,) = [i for i in KUSTOMIZATION["images"] if i["name"] == name]
    assert entry["newTag"] == tag
