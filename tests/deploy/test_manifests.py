"""The Kubernetes examples without a cluster: the application ends on SIGTERM, /metrics is fenced in, and
the podman variant is the sidecar's pod with only the changes its header names."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
SIDECAR, PODMAN = KUBE / "sidecar.yaml", KUBE / "podman-kube.yaml"
COMPOSE = ROOT / "deploy" / "compose.yaml"


def docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def pod_spec(path: Path) -> dict[str, Any]:
    (deployment,) = [d for d in docs(path) if d["kind"] == "Deployment"]
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def containers(path: Path) -> dict[str, dict[str, Any]]:
    spec = pod_spec(path)
    return {c["name"]: c for c in [*spec.get("initContainers", []), *spec["containers"]]}


def app_scripts() -> list[tuple[str, str]]:
    """(where, the shell script) of every example application."""
    found = []
    for path in (SIDECAR, PODMAN):
        command = containers(path)["app"]["command"]
        assert command[:2] == ["sh", "-c"], command
        found.append((path.name, command[2]))
    compose = yaml.safe_load(COMPOSE.read_text())["services"]["app"]["command"]
    found.append((COMPOSE.name, compose[2].replace("$$", "$")))  # compose's escape of a literal $
    return found


@pytest.mark.parametrize(("where", "script"), app_scripts(), ids=[w for w, _ in app_scripts()])
def test_the_example_application_ends_at_once_on_sigterm(where: str, script: str, tmp_path: Path) -> None:
    """Run as the pod would run it, but with the data volume moved: it must exit 0 within a second or
    two of SIGTERM, not sit out the grace period."""
    moved = script.replace("/app/data", str(tmp_path))
    # `setsid` makes it lead a session, like PID 1 of a container: a shell ignores no signal by default
    # there either, so the trap is what ends it.
    proc = subprocess.Popen(["setsid", "sh", "-c", moved])
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "heartbeat.txt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "heartbeat.txt").exists(), f"{where}: the application wrote nothing"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=3) == 0, where
    finally:
        proc.kill()
        proc.wait()


def test_only_the_monitoring_namespace_reaches_the_metrics_port() -> None:
    (policy,) = [d for d in docs(SIDECAR) if d["kind"] == "NetworkPolicy"]
    (deployment,) = [d for d in docs(SIDECAR) if d["kind"] == "Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= labels.items(), "the policy selects the example's pod"
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    port = next(p["containerPort"] for p in containers(SIDECAR)["committer"]["ports"])
    assert rule["ports"] == [{"protocol": "TCP", "port": port}]


def test_the_podman_variant_differs_only_where_its_header_says() -> None:
    kube, podman = containers(SIDECAR), containers(PODMAN)
    assert set(kube) == set(podman) == {"committer", "app"}
    assert kube["committer"].get("restartPolicy") == "Always" and "restartPolicy" not in podman["committer"]
    assert [c["name"] for c in pod_spec(PODMAN)["containers"]] == ["committer", "app"], "no native sidecar"
    for key in ("image", "args", "env", "securityContext", "resources", "volumeMounts"):
        assert kube["committer"][key] == podman["committer"][key], key
    assert kube["app"]["command"] == podman["app"]["command"]
    volumes = {v["name"]: v for v in pod_spec(PODMAN)["volumes"]}
    assert volumes["committer-token"]["secret"]["optional"] is False
    kube_volumes = {v["name"]: v for v in pod_spec(SIDECAR)["volumes"]}
    assert {**kube_volumes["committer-token"]["secret"], "optional": False} == volumes["committer-token"]["secret"]
    assert set(volumes) == set(kube_volumes)
    assert not [d for d in docs(PODMAN) if d["kind"] == "NetworkPolicy"]


def test_the_podman_variant_matches_the_kubernetes_api_schema() -> None:
    validator = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate to check the "
                                    "manifests against the Kubernetes API schema")
    for doc in docs(PODMAN):
        validator.validate(doc, validator.latest_version(), strict=True)
