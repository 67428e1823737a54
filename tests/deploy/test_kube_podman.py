"""deploy/kubernetes/podman-kube.yaml played for real with `podman kube play`, as its header says.

The file is played as shipped but for what a test must change: the images (the image the other podman
tests build; the application runs its shell), the names (so parallel runs do not meet), the remote (a
bare repository from the host, mounted in the pod) and the debounce. The application container writes
a file, the commit reaches the remote; then `podman pod stop -t 30` sends SIGTERM: the application
ends at once and committer commits and pushes its last write on the way out.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import wait_for
from tests.podman import ROOT, Image, Podman, committer_image, json_lines, require, why_not

pytestmark = [pytest.mark.integration, pytest.mark.podman, pytest.mark.timeout(900)]
REASON = why_not()
if REASON:
    pytest.skip(REASON, allow_module_level=True)

EXAMPLE = ROOT / "deploy" / "kubernetes" / "podman-kube.yaml"
UID = 10001
STOP = 30  # `podman pod stop -t 30`, as the header says
TOKEN = "ghp_KubePlayToken0123456789abcdefABCDEFGH"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    podman = require()
    if subprocess.run(["sh", "-c", "command -v catatonit"], capture_output=True, check=False).returncode != 0:
        pytest.skip("podman kube play: catatonit (the pod's pause process) is not installed")
    return committer_image(podman, tmp_path_factory.mktemp("wheels"), "the kube play test")


def git(*args: str) -> str:
    proc = subprocess.run(["git", "-c", "safe.directory=*", *args], capture_output=True, text=True, check=False,
                          timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {proc.stderr}")
    return proc.stdout


def served(remote: Path, path: str) -> str | None:
    proc = subprocess.run(["git", "-c", "safe.directory=*", f"--git-dir={remote}", "cat-file", "blob",
                           f"refs/heads/main:{path}"], capture_output=True, text=True, check=False, timeout=60)
    return proc.stdout if proc.returncode == 0 else None


def played(example: list[dict[str, Any]], name: str, tag: str) -> list[dict[str, Any]]:
    """The example with the test's names, image, remote and debounce; every other line as shipped."""
    docs = [dict(doc) for doc in example]
    for doc in docs:
        if doc["kind"] == "PersistentVolumeClaim":
            doc["metadata"]["name"] = f"{name}-{doc['metadata']['name']}"
            continue
        doc["metadata"]["name"] = name
        spec = doc["spec"]["template"]["spec"]
        for container in spec["containers"]:
            container["image"] = tag
            if container["name"] == "committer":
                for item in container["env"]:
                    if item["name"] == "COMMITTER_REMOTE":
                        item["value"] = "file:///remote/notes.git"
                container["env"] += [{"name": "COMMITTER_DEBOUNCE", "value": "1s"},
                                     {"name": "COMMITTER_PUSH_INTERVAL", "value": "500ms"}]
                container["volumeMounts"].append({"name": "remote", "mountPath": "/remote/notes.git"})
        for volume in spec["volumes"]:
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]
                claim["claimName"] = f"{name}-{claim['claimName']}"
            if "secret" in volume:
                volume["secret"]["secretName"] = f"{name}-token"
        spec["volumes"].append({"name": "remote", "hostPath": {"path": "REMOTE", "type": "Directory"}})
    return docs


@dataclass
class Pod:
    podman: Podman
    name: str

    @property
    def pod(self) -> str:
        return f"{self.name}-pod-0"  # podman 4.3 names a Deployment's pod so

    def container(self, role: str) -> str:
        return f"{self.pod}-{role}"

    def events(self) -> list[dict[str, Any]]:
        proc = self.podman.run("logs", self.container("committer"), check=False)
        return json_lines(proc.stdout + proc.stderr)

    def names(self) -> list[str]:
        return [str(e.get("event")) for e in self.events()]

    def exit_code(self, role: str) -> int:
        return int(self.podman.inspect("container", self.container(role), "{{.State.ExitCode}}"))


@pytest.fixture
def pod(image: Image, tmp_path: Path) -> Iterator[tuple[Pod, Path]]:
    podman = image.podman
    name = podman.name("kube")
    remote = tmp_path / "notes.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    for path in [remote, *remote.rglob("*")]:
        os.chown(path, UID, UID, follow_symlinks=False)
    # podman 4.3 takes the Secret as YAML, and writes the values of `data:` as they are (no base64 decoding).
    secret = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}-token\ndata:\n  token: {TOKEN}\n"
    podman.run("secret", "create", f"{name}-token", "-", input=secret)
    docs = played(list(yaml.safe_load_all(EXAMPLE.read_text())), name, image.tag)
    manifest = tmp_path / "play.yaml"
    manifest.write_text(yaml.safe_dump_all(docs).replace("path: REMOTE", f"path: {remote}"))
    running = Pod(podman, name)
    try:
        podman.run("kube", "play", "--network", "none", str(manifest), timeout=180)
        yield running, remote
    finally:
        podman.run("pod", "rm", "--force", "--time", "0", running.pod, check=False)
        # the claims' volumes, and the one podman 4.3 makes for the secret
        for volume in (f"{name}-notes-data", f"{name}-notes-git", f"{name}-token"):
            podman.run("volume", "rm", "--force", volume, check=False)
        podman.run("secret", "rm", f"{name}-token", check=False)


def test_the_podman_kube_play_example_commits_and_pushes_the_last_write_on_pod_stop(pod: tuple[Pod, Path]) -> None:
    running, remote = pod
    podman = running.podman
    wait_for(lambda: "daemon_ready" in running.names(), 60, "committer ready in the pod", 0.25)
    # The Secret's token is in the file committer reads, as written (see the example's header).
    token = podman.run("exec", running.container("committer"), "cat", "/run/secrets/committer/token").stdout
    assert token == TOKEN and base64.b64encode(TOKEN.encode()).decode() != token

    def write(path: str, text: str) -> None:
        script = f"mkdir -p /app/data/{Path(path).parent} && printf '%s' '{text}' > /app/data/{path}"
        podman.run("exec", running.container("app"), "sh", "-c", script)

    write("notes/first.md", "from the application")
    wait_for(lambda: served(remote, "notes/first.md") == "from the application", 60, "the first push", 0.25)
    assert served(remote, "heartbeat.txt"), "the application's own file was not pushed"

    write("notes/last.md", "written just before the stop")
    started = time.monotonic()
    podman.run("pod", "stop", "--time", str(STOP), running.pod, timeout=STOP + 60)
    took = time.monotonic() - started
    # Both ended on SIGTERM well within the grace period: the application at once (exit 0 from its
    # trap, not 137 from a SIGKILL), committer after its last commit and push.
    assert took < STOP / 2, took
    assert (running.exit_code("app"), running.exit_code("committer")) == (0, 0)
    stopping = [e for e in running.events() if e.get("event") == "daemon_stopping"]
    assert [e.get("signal") for e in stopping] == [15], running.names()
    assert running.names()[-1] == "daemon_stop", running.names()
    assert served(remote, "notes/last.md") == "written just before the stop"
