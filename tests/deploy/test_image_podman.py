"""The image built for real with podman and run as the sidecar: volumes, a read-only root, real signals.

The base is a Debian root made by mmdebstrap and the package goes in from wheels built here, so the
build reaches no registry and no package index (`--network none`); see tests/podman.py for what is
cached between runs. Files are written into the data volume from the host, the way the application
container of the pod writes them, and the remote is a bare repository on a third volume.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.podman import LABEL, ROOT, Image, Podman, committer_image, json_lines, require, why_not

pytestmark = [pytest.mark.integration, pytest.mark.podman, pytest.mark.timeout(900)]
REASON = why_not()
if REASON:
    pytest.skip(REASON, allow_module_level=True)

UID = 10001  # the image's USER
REMOTE = "file:///remote/notes.git"
FAST = {"COMMITTER_DEBOUNCE": "200ms", "COMMITTER_PUSH_INTERVAL": "500ms"}
STOP_TIMEOUT = 30  # what deploy/README.md tells users to give it
MEMORY = "256m"  # the limit of deploy/compose.yaml and the Kubernetes example
SIZE_BUDGET = 350 * 10**6  # a regression past this is worth a look
SIZE_TOLERANCE = 0.10  # the figure the manual types may be this far from the measured size
# Where the manual gives the image's size: deploy/README.md's table and docs/operating.md.
SIZE_FIGURES = ((ROOT / "deploy" / "README.md", re.compile(r"^\| size \| about (\d+) MB", re.M)),
                (ROOT / "docs" / "operating.md", re.compile(r"the image is about (\d+) MB")))


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    return committer_image(require(), tmp_path_factory.mktemp("wheels"), "the image tests")


# -- volumes and the running sidecar ---------------------------------------------------------------


@dataclass
class Volumes:
    """Named volumes: the data directory, the git directory and the remote's."""

    podman: Podman
    names: dict[str, str] = field(default_factory=dict)

    def create(self, role: str) -> Path:
        name = self.podman.name(role)
        self.podman.run("volume", "create", "--label", f"{LABEL}=1", name)
        self.names[role] = name
        return self.path(role)

    def path(self, role: str) -> Path:
        return Path(self.podman.inspect("volume", self.names[role], "{{.Mountpoint}}"))

    def mounts(self) -> list[str]:
        targets = {"data": "/app/data", "git": "/app/git", "remote": "/remote"}
        return [arg for role, name in self.names.items() for arg in ("--volume", f"{name}:{targets[role]}")]


def host_git(git_dir: Path, *args: str, check: bool = True) -> str:
    """git on the host against a repository the container's user owns."""
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C",
           "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"}
    proc = subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, text=True, env=env,
                          check=False, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {proc.stderr}")
    return proc.stdout.strip()


def remote_file(remote: Path, path: str) -> str | None:
    proc = subprocess.run(["git", f"--git-dir={remote}", "-c", "safe.directory=*", "cat-file", "blob",
                           f"refs/heads/main:{path}"], capture_output=True, text=True, check=False, timeout=60)
    return proc.stdout if proc.returncode == 0 else None


def ref_updates(remote: Path) -> int:
    """How many times the remote's main was updated (its reflog, kept for every push)."""
    log = remote / "logs" / "refs" / "heads" / "main"
    return len(log.read_text().splitlines()) if log.exists() else 0


def make_remote(volume: Path, work: Path | None = None) -> Path:
    """A bare repository on the volume, holding work's history if given, owned by the image's user."""
    remote = volume / "notes.git"
    host_git(remote, "init", "--quiet", "--bare", "--initial-branch=main")
    host_git(remote, "config", "core.logAllRefUpdates", "always")
    if work is not None:
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_AUTHOR_NAME": "t",
               "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
        for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "history"],
                        ["push", "-q", str(remote), "main"]):
            subprocess.run(["git", "-C", str(work), *command], env=env, check=True, capture_output=True, timeout=60)
    chown_tree(volume)
    return remote


def chown_tree(top: Path) -> None:
    for path in [top, *top.rglob("*")]:
        os.chown(path, UID, UID, follow_symlinks=False)


def write_as_app(data: Path, relative: str, text: str) -> None:
    """Write a file into the data volume as the application container (same UID) would."""
    target = data / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    for path in [target, *target.relative_to(data).parents]:
        os.chown(data / path, UID, UID)


@dataclass
class Sidecar:
    podman: Podman
    name: str

    def lines(self) -> list[dict[str, Any]]:
        return json_lines(self.output())

    def raw_stderr(self) -> list[str]:
        return [line for line in self.podman.run("logs", self.name, check=False).stderr.splitlines() if line]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.lines() if e.get("event") == name]

    def running(self) -> bool:
        return self.podman.inspect("container", self.name, "{{.State.Running}}") == "true"

    def wait_event(self, name: str, timeout: float = 60) -> dict[str, Any]:
        def seen() -> dict[str, Any] | None:
            found = self.events(name)
            if not found and not self.running():
                raise AssertionError(f"the container exited before {name}:\n{self.output()}")
            return found[0] if found else None

        return wait_for(seen, timeout, name, interval=0.2)  # type: ignore[no-any-return]

    def exec(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.podman.run("exec", self.name, *command, check=check)

    def stop(self) -> tuple[int, float]:
        """`podman stop`: the image's STOPSIGNAL to PID 1 (tini); (exit code, seconds it took)."""
        started = time.monotonic()
        self.podman.run("stop", "--time", str(STOP_TIMEOUT), self.name, timeout=STOP_TIMEOUT + 60)
        took = time.monotonic() - started
        return int(self.podman.inspect("container", self.name, "{{.State.ExitCode}}")), took

    def output(self) -> str:
        proc = self.podman.run("logs", self.name, check=False)
        return proc.stdout + proc.stderr


@pytest.fixture
def sidecar(image: Image) -> Iterator[Callable[..., Sidecar]]:
    started: list[Sidecar] = []

    def start(volumes: Volumes, **env: str) -> Sidecar:
        name = image.podman.name("sidecar")
        settings = {"COMMITTER_REMOTE": REMOTE, **env}
        flags = [arg for key, value in settings.items() for arg in ("--env", f"{key}={value}")]
        # What deploy/README.md runs: read-only root, /tmp on a tmpfs, no capabilities, no new privileges.
        image.podman.run(
            "run", "--detach", "--name", name, "--label", f"{LABEL}=1", "--network", "none",
            "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--stop-timeout", str(STOP_TIMEOUT), "--memory", MEMORY, *volumes.mounts(), *flags, image.id,
        )
        running = Sidecar(image.podman, name)
        started.append(running)
        return running

    yield start
    for running in started:
        image.podman.run("rm", "--force", "--time", "0", running.name, check=False)


@pytest.fixture
def volumes(image: Image) -> Iterator[Volumes]:
    made = Volumes(image.podman)
    yield made
    for name in made.names.values():
        image.podman.run("volume", "rm", "--force", name, check=False)


# -- the tests -------------------------------------------------------------------------------------


def test_the_image_builds_offline_from_debian_packages_and_wheels(image: Image) -> None:
    inspected = json.loads(image.podman.run("image", "inspect", image.id).stdout)[0]
    config = inspected["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["tini", "--", "committer"] and config["Cmd"] == ["run"]
    assert config["StopSignal"] == "SIGTERM"
    # --format docker keeps the HEALTHCHECK (the OCI format drops it).
    check = ["CMD", "python3", "/usr/local/share/committer/healthcheck.py", "/healthz"]
    assert inspected["Healthcheck"]["Test"] == check
    assert image.size < SIZE_BUDGET, f"the image is {image.size / 1e6:.0f} MB"


def test_the_size_the_manual_gives_is_the_measured_one(image: Image) -> None:
    measured = image.size / 1e6
    for page, figure in SIZE_FIGURES:
        found = figure.findall(page.read_text(encoding="utf-8"))
        assert found, f"{page.name} gives no image size"
        for typed in map(int, found):
            assert abs(typed - measured) <= SIZE_TOLERANCE * measured, (
                f"{page.name} says about {typed} MB; the image measures {measured:.0f} MB")


def test_the_sidecar_commits_pushes_is_healthy_and_flushes_on_podman_stop(
    image: Image, volumes: Volumes, sidecar: Callable[..., Sidecar]
) -> None:
    data, git, remote = volumes.create("data"), volumes.create("git"), make_remote(volumes.create("remote"))
    first = sidecar(volumes, **FAST)
    first.wait_event("daemon_ready")
    # New named volumes took the image's owner and modes at their first mount: no chown was needed.
    assert [(d.stat().st_uid, d.stat().st_mode & 0o777) for d in (data, git)] == [(UID, 0o770), (UID, 0o750)]

    assert first.podman.inspect("container", first.name, "{{.HostConfig.Memory}}") == str(256 * 2**20)
    # tini is PID 1, committer runs as the image's non-root user, and the root filesystem is read-only.
    assert first.exec("cat", "/proc/1/comm").stdout.strip() == "tini"
    processes = first.podman.run("top", first.name, "user", "args").stdout.splitlines()[1:]
    assert {line.split()[0] for line in processes} == {"committer"}, processes
    assert any("committer run" in line for line in processes), processes
    denied = first.exec("touch", "/opt/committer/written", check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr

    write_as_app(data, "notes/a.md", "first note\n")
    write_as_app(data, "notes/b.md", "second note\n")
    wait_for(lambda: remote_file(remote, "notes/a.md") == "first note\n"
             and remote_file(remote, "notes/b.md") == "second note\n", 60, "both notes on the remote", 0.2)
    assert first.events("git_commit") and first.events("git_push")

    def healthy() -> bool:
        return first.podman.run("healthcheck", "run", first.name, check=False).returncode == 0

    wait_for(healthy, 60, "podman healthcheck run to pass", 0.5)
    assert first.podman.inspect("container", first.name, "{{.State.Health.Status}}") == "healthy"

    code, took = first.stop()
    assert code == 0 and took < STOP_TIMEOUT, (code, took, first.output())
    assert [e.get("signal") for e in first.events("daemon_stopping")] == [signal.SIGTERM]  # forwarded by tini
    assert first.events("daemon_stop")
    # stderr is JSON lines only: no warning from tini, no traceback.
    for line in first.raw_stderr():
        assert isinstance(json.loads(line), dict), line
    assert (git / "knowledge.git" / "HEAD").is_file() and set(os.listdir(data)) == {"notes"}

    # Same volumes, a debounce far longer than the test: a change is still pending when podman stops it.
    second = sidecar(volumes, COMMITTER_DEBOUNCE="10m", COMMITTER_MAX_DELAY="10m")
    second.wait_event("daemon_ready")
    assert not second.events("git_commit"), "a restart on the same volumes committed again"
    pushes = ref_updates(remote)
    write_as_app(data, "notes/late.md", "written just before the stop\n")
    code, took = second.stop()
    assert code == 0 and took < STOP_TIMEOUT, (code, took, second.output())
    assert remote_file(remote, "notes/late.md") == "written just before the stop\n", second.output()
    names = [e.get("event") for e in second.lines()]
    assert "daemon_stopping" in names and "git_commit" in names[names.index("daemon_stopping"):], names
    assert ref_updates(remote) == pushes + 1

    # Once more on the same volumes: nothing is committed or pushed again.
    head, pushes = host_git(git / "knowledge.git", "rev-parse", "HEAD"), ref_updates(remote)
    third = sidecar(volumes, **FAST)
    third.wait_event("daemon_ready")
    wait_for(lambda: third.podman.run("healthcheck", "run", third.name, check=False).returncode == 0, 60,
             "the third start to be healthy", 0.5)
    code, _ = third.stop()
    assert code == 0, third.output()
    assert not third.events("git_commit") and not third.events("git_push"), third.output()
    assert host_git(git / "knowledge.git", "rev-parse", "HEAD") == head
    assert ref_updates(remote) == pushes


def test_an_empty_data_volume_is_restored_from_the_remote(
    image: Image, volumes: Volumes, sidecar: Callable[..., Sidecar], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    (work / "notes").mkdir(parents=True)
    (work / "notes" / "kept.md").write_text("backed up\n")
    (work / "top.md").write_text("top\n")
    remote = make_remote(volumes.create("remote"), work)
    pushed = host_git(remote, "rev-parse", "refs/heads/main")

    data, git = volumes.create("data"), volumes.create("git")
    restored = sidecar(volumes, **FAST)
    restored.wait_event("daemon_ready")
    assert (data / "notes" / "kept.md").read_text() == "backed up\n" and (data / "top.md").read_text() == "top\n"
    assert {p.stat().st_uid for p in data.rglob("*")} == {UID}
    assert restored.events("remote_history_restored")
    code, _ = restored.stop()
    assert code == 0, restored.output()
    assert host_git(git / "knowledge.git", "rev-parse", "HEAD") == pushed
    assert host_git(remote, "rev-parse", "refs/heads/main") == pushed
