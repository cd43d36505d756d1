"""Every overlay renders with `kubectl kustomize` and every rendered object validates against the
Kubernetes schemas (kubernetes-validate, strict). That tool passes objects it has no schema for, so here
an object without a schema fails, except the named custom resources, whose key fields are checked here."""

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.32.0"
TARGETS = ["base", "overlays/gpu", "overlays/canary", "overlays/shadow", "training"]
CUSTOM_KINDS = {"ServiceMonitor", "VirtualService", "DestinationRule", "TFJob"}

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) is not installed")


def render(target: str) -> list[dict]:
    r = subprocess.run(["kubectl", "kustomize", str(K8S / target)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def check_custom(obj: dict, all_objects: list[dict]) -> None:
    kind, spec = obj["kind"], obj["spec"]
    services = {o["metadata"]["name"] for o in all_objects if o["kind"] == "Service"}
    if kind == "ServiceMonitor":
        assert obj["apiVersion"] == "monitoring.coreos.com/v1"
        (ep,) = spec["endpoints"]
        assert ep["port"] == "http" and ep["path"] == "/monitoring/prometheus/metrics"
        assert spec["selector"]["matchLabels"]
    elif kind == "VirtualService":
        assert obj["apiVersion"].startswith("networking.istio.io/")
        (route,) = spec["http"]
        assert route["route"][0]["destination"]["host"] in services
        assert route["mirror"]["host"] in services and route["mirror"]["port"]["number"] == 8500
        assert 0 < route["mirrorPercentage"]["value"] <= 100
    elif kind == "DestinationRule":
        assert obj["apiVersion"].startswith("networking.istio.io/") and spec["host"] in services
    elif kind == "TFJob":
        assert obj["apiVersion"] == "kubeflow.org/v1"
        replicas = spec["tfReplicaSpecs"]
        assert set(replicas) == {"Worker"} and replicas["Worker"]["replicas"] == 1  # one worker: see the notes
        (c,) = replicas["Worker"]["template"]["spec"]["containers"]
        assert c["resources"]["limits"]["nvidia.com/gpu"]
    else:
        raise AssertionError(f"no check for {kind}")


def validate_all(objects: list[dict]) -> None:
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            assert obj["kind"] in CUSTOM_KINDS, f"{obj['kind']} has no schema and is not a known custom resource"
            check_custom(obj, objects)


@pytest.mark.parametrize("target", TARGETS)
def test_renders_and_validates(target):
    validate_all(render(target))


def test_tfjob_validates():
    validate_all([yaml.safe_load((K8S / "training" / "tfjob.yaml").read_text())])


def test_a_broken_object_is_caught():
    bad = render("base")
    deployment = next(o for o in bad if o["kind"] == "Deployment")
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_all(bad)
    with pytest.raises(AssertionError, match="no schema"):
        validate_all([{"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "x"}, "spec": {}}])


def _images(objects):
    for o in objects:
        spec = o.get("spec", {})
        pod = (
            spec.get("template", {}).get("spec")
            or (spec.get("tfReplicaSpecs", {}).get("Worker", {}).get("template", {}).get("spec"))
            or {}
        )
        for c in pod.get("containers", []):
            yield c["image"]


@pytest.mark.parametrize("target", TARGETS)
def test_every_image_is_pinned(target):
    for image in _images(render(target)):
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest", image


def test_base_serving_deployment():
    objs = {(o["kind"], o["metadata"]["name"]): o for o in render("base")}
    d = next(o for (k, _), o in objs.items() if k == "Deployment")
    assert d["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    (c,) = d["spec"]["template"]["spec"]["containers"]
    assert {p["containerPort"] for p in c["ports"]} == {8500, 8501}
    assert c["readinessProbe"]["httpGet"]["path"] == "/v1/models/penguins" and c["livenessProbe"]
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert any(a.startswith("--model_config_file=/etc/shipyard/") for a in c["args"])
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is True
    kinds = {k for k, _ in objs}
    assert {"PodDisruptionBudget", "HorizontalPodAutoscaler", "PersistentVolumeClaim", "ConfigMap"} <= kinds
    assert objs[("Service", "tfserving-headless")]["spec"]["clusterIP"] == "None"
    cm = next(o for (k, _), o in objs.items() if k == "ConfigMap")
    assert set(cm["data"]) == {"models.config", "batching.config", "monitoring.config"}


def test_the_configmap_files_are_the_serving_configs_and_parse():
    from serving import config as cfg

    for name in ("batching.config", "monitoring.config"):
        assert (K8S / "base" / "configs" / name).read_text() == (ROOT / "serving" / "configs" / name).read_text()
    for path in (K8S / "base" / "configs" / "models.config", K8S / "overlays" / "canary" / "canary-models.config"):
        config = cfg.model_server_config(path)
        assert all(m.base_path.startswith("/models/") for m in config.model_config_list.config)


def test_gpu_canary_and_shadow_overlays():
    gpu = next(o for o in render("overlays/gpu") if o["kind"] == "Deployment")
    (c,) = gpu["spec"]["template"]["spec"]["containers"]
    assert c["image"].endswith("-gpu") and c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    canary = render("overlays/canary")
    assert sorted(o["metadata"]["name"] for o in canary if o["kind"] == "Deployment") == [
        "tfserving",
        "tfserving-canary",
    ]
    shadow = render("overlays/shadow")
    vs = next(o for o in shadow if o["kind"] == "VirtualService")
    assert vs["spec"]["http"][0]["mirror"]["host"] == "tfserving-canary"


def test_training_job_requests_a_gpu_and_writes_the_model_base_path():
    (job,) = render("training")
    pod = job["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {e["name"]: e["value"] for e in c["env"]}["SEED"] == "42"
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "models"


def test_training_dockerfile_and_entrypoint():
    hadolint = shutil.which("hadolint", path=str(Path(__import__("sys").executable).parent))
    r = subprocess.run([hadolint, str(ROOT / "Dockerfile.train")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    text = (ROOT / "Dockerfile.train").read_text()
    assert "ARG BASE_IMAGE=python:3.11.7-slim-bookworm" in text and "latest" not in text
    script = (ROOT / "deploy" / "train-and-export.sh").read_text()
    assert "python3 -m train" in script and "python3 -m export" in script
