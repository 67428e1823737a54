"""The container image and its deployments, without a container engine.

The Containerfile is parsed line by line and its contract checked (base, packages, user, ENV,
entrypoint); the image's command line is then run as a plain process with exactly the ENV the
Containerfile sets, on temporary directories standing in for its volumes, and, where this machine
allows it, with tini as PID 1 of its own PID namespace, stopped the way `docker stop` and the kubelet
stop it. The Kubernetes and compose examples are parsed with PyYAML and checked against the same
contract.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from committer.core.settings import NAMES, Settings, env_name, load_settings
from committer.core.values import parse_address, parse_duration
from committer.policy.secrets import find_secret
from tests.conftest import ROOT, wait_for
from tests.podman import json_lines

CONTAINERFILE = ROOT / "Containerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOY = ROOT / "deploy"
SIDECAR = DEPLOY / "kubernetes" / "sidecar.yaml"
SECRET = DEPLOY / "kubernetes" / "secret.example.yaml"
COMPOSE = DEPLOY / "compose.yaml"
HEALTHCHECK = DEPLOY / "healthcheck.py"

DEFAULT_SHUTDOWN = Settings().shutdown_timeout
SIGTERM_MARGIN = 10.0


# -- the Containerfile, parsed ----------------------------------------------------------------------


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: continuations joined, comments dropped."""
    found: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        keyword, _, rest = (current + line).partition(" ")
        found.append((keyword.upper(), " ".join(rest.split()) if keyword.upper() == "RUN" else rest.strip()))
        current = ""
    assert not current, "the Containerfile ends inside a line continuation"
    return found


@functools.cache
def all_instructions() -> tuple[tuple[str, str], ...]:
    return tuple(instructions(CONTAINERFILE.read_text()))


@functools.cache
def final_stage() -> tuple[tuple[str, str], ...]:
    """The instructions of the image that runs: everything after the last FROM."""
    steps = all_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def values(keyword: str) -> list[str]:
    return [rest for kw, rest in final_stage() if kw == keyword]


def last(keyword: str) -> str:
    found = values(keyword)
    assert found, f"the Containerfile's final stage has no {keyword}"
    return found[-1]


def exec_form(text: str) -> list[str]:
    parsed = json.loads(text)
    assert isinstance(parsed, list) and all(isinstance(part, str) for part in parsed), text
    return parsed


@functools.cache
def image_env() -> dict[str, str]:
    """The ENV of the final stage, exactly as the image has it."""
    env: dict[str, str] = {}
    for rest in values("ENV"):
        words = shlex.split(rest)
        if "=" not in words[0]:  # legacy `ENV NAME value`
            env[words[0]] = rest.split(None, 1)[1]
            continue
        for word in words:
            name, sep, value = word.partition("=")
            assert sep, f"ENV {rest!r}: expected NAME=value"
            env[name] = value
    for name, value in env.items():
        assert "$" not in value, f"ENV {name}={value}: no expansions, so the contract is what the file says"
    return env


def image_user() -> tuple[int, int | None]:
    match = re.fullmatch(r"(\d+)(?::(\d+))?", last("USER"))
    assert match, f"USER {last('USER')!r}: use a numeric UID[:GID] so runAsNonRoot can check it"
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


def copies() -> list[tuple[list[str], str, bool]]:
    """(sources, destination, from another stage) for every COPY and ADD."""
    found = []
    for keyword, rest in all_instructions():
        if keyword not in ("COPY", "ADD"):
            continue
        words = rest.split()
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        found.append((paths[:-1], paths[-1], any(f.startswith("--from=") for f in flags)))
    return found


def healthcheck_command() -> list[str]:
    rest = last("HEALTHCHECK")
    _options, sep, command = rest.partition("CMD ")
    assert sep, f"HEALTHCHECK {rest!r}: expected CMD"
    return exec_form(command)


def apt_packages() -> set[str]:
    found: set[str] = set()
    for rest in values("RUN"):
        for command in re.split(r"&&|;", rest):
            words = command.split()
            if "apt-get" in words and "install" in words:
                found.update(w for w in words[words.index("install") + 1:] if not w.startswith("-"))
    return found


def base_default() -> str:
    """What `FROM ${BASE}` is without --build-arg: the ARG's default, declared before the first FROM."""
    for keyword, rest in all_instructions():
        if keyword == "FROM":
            break
        if keyword == "ARG" and rest.startswith("BASE="):
            return rest.split("=", 1)[1]
    raise AssertionError("no ARG BASE=... before the first FROM")


def test_the_image_is_slim_python_with_git_git_lfs_and_tini() -> None:
    # Built from the public image by default; any bookworm root with python3 can be given instead.
    stages = [rest.split()[0] for keyword, rest in all_instructions() if keyword == "FROM"]
    assert last("FROM").split()[0] == "${BASE}" and stages.count("${BASE}") == 2
    assert base_default() == "docker.io/library/python:3.11-slim-bookworm"
    assert {"git", "git-lfs", "tini"} <= apt_packages()
    assert any("rm -rf /var/lib/apt/lists" in rest for rest in values("RUN")), "apt lists left in the image"


def test_the_image_runs_as_a_fixed_non_root_user() -> None:
    uid, gid = image_user()
    assert uid != 0 and gid != 0
    created = " ".join(values("RUN"))
    assert re.search(rf"useradd\b[^&;]*--uid {uid}\b", created), "the UID is not created with useradd"
    if gid is not None:
        assert re.search(rf"groupadd\b[^&;]*--gid {gid}\b", created), "the GID is not created with groupadd"


def test_entrypoint_cmd_and_stop_signal() -> None:
    assert exec_form(last("ENTRYPOINT")) == ["tini", "--", "committer"]
    assert exec_form(last("CMD")) == ["run"]
    assert last("STOPSIGNAL") == "SIGTERM"


def test_env_defaults_are_valid_settings() -> None:
    env = image_env()
    assert env["COMMITTER_DATA_DIR"] == "/app/data"
    assert env["COMMITTER_GIT_DIR"] == "/app/git/knowledge.git"
    assert env["COMMITTER_LOG_FORMAT"] == "json"
    known = {env_name(name) for name in NAMES}
    assert {name for name in env if name.startswith("COMMITTER_")} <= known
    settings = load_settings({}, env)
    address = parse_address("COMMITTER_HTTP", settings.http)
    assert address is not None, "the image must serve /healthz and /readyz for its probes"
    assert str(address[1]) in last("EXPOSE").split()
    # HOME and TMPDIR are on the volumes the image declares (or /tmp, mounted as a tmpfs): nothing
    # needs a writable root filesystem.
    volumes = exec_form(last("VOLUME"))
    for name in ("HOME", "TMPDIR"):
        path = env[name]
        assert path == "/tmp" or any(path == v or path.startswith(v + "/") for v in volumes), name
    assert Path(env["COMMITTER_GIT_DIR"]).parent.as_posix() in volumes
    assert env["COMMITTER_DATA_DIR"] in volumes


def test_healthcheck_needs_no_curl() -> None:
    command = healthcheck_command()
    assert not {"curl", "wget"} & {Path(word).name for word in command}
    installed = {dest for sources, dest, _ in copies() if "deploy/healthcheck.py" in sources}
    assert installed & set(command), "the HEALTHCHECK runs a script the image does not contain"


def test_the_build_context_holds_what_the_image_copies() -> None:
    rules = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "the context is a list of what goes in, so nothing else ever leaks into it"
    included = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    for sources, _dest, from_stage in copies():
        if from_stage:
            continue
        for source in sources:
            assert (ROOT / source).exists(), source
            assert source.rstrip("/") in included, f"{source} is excluded by .dockerignore"


# -- the image's command line as a plain process ----------------------------------------------------


def _rehost(value: str, root: Path) -> str:
    """An image path (/app/..., /tmp) moved under root; anything else unchanged."""
    for prefix in ("/app", "/tmp"):
        if value == prefix or value.startswith(prefix + "/"):
            return str(root / prefix.lstrip("/")) + value[len(prefix):]
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _git(git_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, text=True, check=False,
                          env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull})


@dataclass
class Container:
    """Temporary directories standing in for the image's volumes, and the environment it runs with."""

    root: Path
    data: Path
    git_volume: Path
    workdir: Path
    remote: Path
    token: str
    env: dict[str, str]

    @classmethod
    def create(cls, root: Path) -> Container:
        data = Path(_rehost(image_env()["COMMITTER_DATA_DIR"], root))
        git_dir = Path(_rehost(image_env()["COMMITTER_GIT_DIR"], root))
        workdir = Path(_rehost(last("WORKDIR"), root))
        for path in (data, git_dir.parent, workdir, root / "tmp"):
            path.mkdir(parents=True, exist_ok=True)
        remote = root / "remote.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
        token = f"container-test-token-{os.getpid()}-{time.monotonic_ns()}"
        secrets = root / "secrets"
        secrets.mkdir()
        (secrets / "token").write_text(token + "\n")
        (secrets / "token").chmod(0o400)
        bin_dir = str(Path(sys.executable).parent)
        env = {
            "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", os.defpath)]),
            **{name: _rehost(value, root) for name, value in image_env().items()},
            # what a deployment adds: a remote and the token as a file
            "COMMITTER_REMOTE": f"file://{remote}",
            "COMMITTER_TOKEN_FILE": str(secrets / "token"),
            # the image listens on 0.0.0.0:9464; a test must not take a fixed port on the host
            "COMMITTER_HTTP": f"127.0.0.1:{free_port()}",
        }
        workdir.chmod(0o555)
        return cls(root, data, git_dir.parent, workdir, remote, token, env)

    def workdir_entries(self) -> set[str]:
        return set(os.listdir(self.workdir))


def _committer_command() -> list[str]:
    entrypoint, cmd = exec_form(last("ENTRYPOINT")), exec_form(last("CMD"))
    program = entrypoint[entrypoint.index("--") + 1:] if "--" in entrypoint else entrypoint
    executable = Path(sys.executable).parent / program[0]
    head = [str(executable)] if executable.exists() else [sys.executable, "-m", "committer"]
    return [*head, *program[1:], *cmd]


def _tini_pid1_command() -> list[str]:
    return ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", *exec_form(last("ENTRYPOINT")),
            *exec_form(last("CMD"))]


@functools.cache
def _pid_namespaces_usable() -> str | None:
    """None when tini can run as PID 1 of a new PID namespace here, else why not."""
    if shutil.which("tini") is None:
        return "tini is not installed (apt-get install tini)"
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return "tini as PID 1: a new PID namespace needs unshare and root"
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                           capture_output=True, check=False, timeout=30)
    return None if probe.returncode == 0 else f"tini as PID 1: unshare --pid is refused here: {probe.stderr!r}"


class Running:
    """The image's command as a process; stderr (the JSON log) captured to a file."""

    def __init__(self, container: Container, command: list[str], in_namespace: bool) -> None:
        self.container = container
        self.stderr_path = container.root / "stderr.log"
        self.stdout_path = container.root / "stdout.log"
        with self.stderr_path.open("wb") as err, self.stdout_path.open("wb") as out:
            self.proc = subprocess.Popen(command, cwd=container.workdir, env=container.env, stdout=out,
                                         stderr=err, stdin=subprocess.DEVNULL)
        self.in_namespace = in_namespace

    def pid1(self) -> int:
        """The pid a container engine signals: tini inside the namespace, else the process itself."""
        if not self.in_namespace:
            return self.proc.pid

        def child() -> int | None:
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:  # the parent pid field
                    return int(entry.name)
            return None

        pid = int(wait_for(child, 10, "the namespace's PID 1"))
        status = Path(f"/proc/{pid}/status").read_text()
        nspid = next(line for line in status.splitlines() if line.startswith("NSpid:")).split()
        assert nspid[-1] == "1" and Path(f"/proc/{pid}/comm").read_text().strip() == "tini", status
        return pid

    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr_path.read_text(errors="replace").splitlines() if line.strip()]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [event for event in json_lines("\n".join(self.stderr_lines())) if event.get("event") == name]

    def output(self) -> str:
        return self.stderr_path.read_text(errors="replace") + self.stdout_path.read_text(errors="replace")

    def wait_event(self, name: str, timeout: float) -> dict[str, Any]:
        def seen() -> dict[str, Any] | None:
            found = self.events(name)
            if not found and self.proc.poll() is not None:
                raise AssertionError(f"exited with {self.proc.returncode} before {name}:\n{self.output()}")
            return found[0] if found else None

        return wait_for(seen, timeout, name)  # type: ignore[no-any-return]

    def terminate(self) -> tuple[int, float]:
        """SIGTERM to PID 1; (exit code, seconds it took)."""
        started = time.monotonic()
        os.kill(self.pid1(), signal.SIGTERM)
        limit = parse_duration("shutdown", self.container.env.get("COMMITTER_SHUTDOWN_TIMEOUT", "10s"))
        code = self.proc.wait(timeout=limit + SIGTERM_MARGIN)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    made = Container.create(tmp_path / "container")
    yield made
    made.workdir.chmod(0o755)


@pytest.fixture
def launch(container: Container) -> Iterator[Callable[[str], Running]]:
    started: list[Running] = []

    def start(how: str) -> Running:
        if how == "tini-pid1":
            reason = _pid_namespaces_usable()
            if reason:
                pytest.skip(reason)
            running = Running(container, _tini_pid1_command(), in_namespace=True)
        else:
            running = Running(container, _committer_command(), in_namespace=False)
        started.append(running)
        return running

    yield start
    for running in started:
        running.kill()


@pytest.mark.integration
@pytest.mark.parametrize("how", ["command", "tini-pid1"])
def test_the_image_command_commits_pushes_and_stops_on_sigterm(
    container: Container, launch: Callable[[str], Running], how: str
) -> None:
    before = container.workdir_entries()
    daemon = launch(how)
    daemon.wait_event("daemon_ready", timeout=60)
    assert (container.git_volume / "knowledge.git" / "HEAD").is_file(), "the repository was not created"

    note = container.data / "notes" / "hello.md"
    note.parent.mkdir()
    note.write_text("written inside the container\n")
    wait_for(lambda: _git(container.remote, "cat-file", "blob", "main:notes/hello.md").stdout
             == "written inside the container\n", 60, "the file on the remote")
    assert daemon.events("git_commit")

    code, took = daemon.terminate()
    assert code == 0, daemon.output()
    assert took < DEFAULT_SHUTDOWN + SIGTERM_MARGIN
    assert daemon.events("daemon_stop"), daemon.output()

    # The log is JSON lines on stderr (nothing else: no tini warning, no traceback), without the token.
    for line in daemon.stderr_lines():
        event = json.loads(line)
        assert {"event", "level", "timestamp"} <= set(event), line
    assert container.token not in daemon.output()
    # Nothing written where it does not belong: not in the working directory (the read-only root),
    # nothing but the file in the data directory, and on the git volume (also HOME) only the repository.
    assert container.workdir_entries() == before
    assert sorted(p.name for p in container.data.rglob("*")) == ["hello.md", "notes"]
    assert set(os.listdir(container.git_volume)) == {"knowledge.git"}


def _has_git_lfs() -> bool:
    return subprocess.run(["git", "lfs", "version"], capture_output=True, check=False).returncode == 0


@pytest.mark.integration
@pytest.mark.skipif(not _has_git_lfs(), reason="git-lfs is not installed (the image has it)")
def test_git_lfs_works_with_the_image_home_and_tmpdir(
    container: Container, launch: Callable[[str], Running]
) -> None:
    threshold = load_settings({}, image_env()).lfs_threshold
    daemon = launch("command")
    daemon.wait_event("daemon_ready", timeout=60)
    (container.data / "big.bin").write_bytes(os.urandom(threshold))
    pointer = wait_for(lambda: _git(container.remote, "cat-file", "blob", "main:big.bin").stdout, 60,
                       "the LFS pointer on the remote")
    oid = re.search(r"^oid sha256:([0-9a-f]{64})$", pointer, re.MULTILINE)
    assert oid, pointer
    stored = container.remote / "lfs" / "objects" / oid[1][:2] / oid[1][2:4] / oid[1]
    assert stored.is_file() and stored.stat().st_size == threshold
    code, _ = daemon.terminate()
    assert code == 0, daemon.output()
    # git-lfs left nothing in HOME (the git volume) or TMPDIR
    assert set(os.listdir(container.git_volume)) == {"knowledge.git"}
    assert os.listdir(container.env["TMPDIR"]) == []


@functools.cache
def _serves_http() -> bool:
    """Whether `committer run` takes --http (the endpoint the image's probes need)."""
    from typer.main import get_command

    from committer.cli import app

    run = get_command(app).commands["run"]  # type: ignore[attr-defined]
    return any("--http" in param.opts for param in run.params)


@pytest.mark.integration
def test_the_probes_answer_on_the_address_the_image_enables(
    container: Container, launch: Callable[[str], Running]
) -> None:
    if not _serves_http():
        pytest.skip("`committer run` has no --http yet")
    daemon = launch("command")
    daemon.wait_event("daemon_ready", timeout=60)
    base = health_url(container.env["COMMITTER_HTTP"], "")
    wait_for(lambda: get(f"{base}/readyz") == 200, 15, "/readyz 200")
    assert get(f"{base}/healthz") == 200
    for path in ("/healthz", "/readyz"):
        check = subprocess.run([sys.executable, str(HEALTHCHECK), path], env=container.env,
                               capture_output=True, text=True, check=False, timeout=30)
        assert check.returncode == 0, check.stderr
    code, _ = daemon.terminate()
    assert code == 0, daemon.output()


# -- the health check script --------------------------------------------------------------------------


def _load_healthcheck() -> ModuleType:
    """deploy/healthcheck.py as a module (compiled here, so no __pycache__ lands in deploy/)."""
    module = ModuleType("committer_healthcheck")
    exec(compile(HEALTHCHECK.read_text(), str(HEALTHCHECK), "exec"), module.__dict__)
    return module


def health_url(address: str, path: str) -> str:
    url = _load_healthcheck().health_url(address, path)
    assert isinstance(url, str)
    return url


def test_healthcheck_asks_loopback_for_a_wildcard_address() -> None:
    module = _load_healthcheck()
    assert module.health_url("0.0.0.0:9464") == "http://127.0.0.1:9464/healthz"
    assert module.health_url(":9464", "/readyz") == "http://127.0.0.1:9464/readyz"
    assert module.health_url("9464") == "http://127.0.0.1:9464/healthz"
    assert module.health_url("[::]:9464") == "http://[::1]:9464/healthz"
    assert module.health_url("10.0.0.7:9464") == "http://10.0.0.7:9464/healthz"
    assert module.health_url("  ") is None


class _Probes(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = {"/healthz": 200, "/readyz": 503}.get(self.path, 404)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def probe_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Probes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _healthcheck(address: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", os.defpath), "COMMITTER_HTTP": address, **extra}
    return subprocess.run([sys.executable, str(HEALTHCHECK), *args], env=env, capture_output=True, text=True,
                          check=False, timeout=30)


def test_healthcheck_exit_codes(probe_server: int) -> None:
    port = probe_server
    assert _healthcheck(f"0.0.0.0:{port}").returncode == 0
    assert _healthcheck(f":{port}", "/healthz").returncode == 0
    # a proxy from the environment is never asked
    assert _healthcheck(f"{port}", http_proxy="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9",
                        no_proxy="").returncode == 0
    not_ready = _healthcheck(f"127.0.0.1:{port}", "/readyz")
    assert not_ready.returncode == 1 and "503" in not_ready.stderr
    refused = _healthcheck(f"127.0.0.1:{free_port()}")
    assert refused.returncode == 1 and refused.stderr.startswith("healthcheck: ")
    off = _healthcheck("")
    assert off.returncode == 1 and "COMMITTER_HTTP" in off.stderr


# -- YAML -----------------------------------------------------------------------------------------------


def load_all(path: Path) -> list[dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert docs and all(isinstance(doc, dict) for doc in docs), path
    return docs


def test_every_deploy_yaml_parses_and_holds_no_secret() -> None:
    files = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    assert {SIDECAR, SECRET, COMPOSE} <= set(files)
    for path in files:
        docs = load_all(path)
        if "kubernetes" in path.parts:
            for doc in docs:
                assert doc.get("apiVersion") and doc.get("kind") and doc.get("metadata", {}).get("name"), path
        assert find_secret(path.read_bytes()) is None, f"{path} holds something that looks like a real secret"


def test_manifests_match_the_kubernetes_api_schema() -> None:
    validator = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate to check the "
                                    "manifests against the Kubernetes API schema")
    for path in (SIDECAR, SECRET, DEPLOY / "kubernetes" / "fleet.yaml"):
        for doc in load_all(path):
            for version in ("1.29", validator.latest_version()):  # native sidecars need 1.29
                validator.validate(doc, version, strict=True)  # unknown or misspelled fields are errors


def test_compose_matches_the_compose_specification() -> None:
    spec = pytest.importorskip("compose_spec", reason="pip install compose-spec to check the compose file "
                               "against the Compose Specification")
    compose = spec.PyCompose.from_yaml(COMPOSE.read_text())  # unknown or misspelled keys are errors
    compose.validate()
    assert set(compose.service_names()) == {"committer", "app"}


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_FACTORS = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
            "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def quantity(value: object) -> float:
    match = _QUANTITY.match(str(value))
    assert match, f"not a Kubernetes quantity: {value!r}"
    return float(match.group(1)) * _FACTORS[match.group(2)]


def under(path: str, mount: str) -> bool:
    return path == mount or path.startswith(mount.rstrip("/") + "/")


@dataclass
class Pod:
    workload: dict[str, Any]
    spec: dict[str, Any]
    sidecar: dict[str, Any]
    apps: list[dict[str, Any]]

    def env(self, container: dict[str, Any]) -> dict[str, Any]:
        """The image's ENV overlaid with the container's env (valueFrom kept as a dict)."""
        env: dict[str, Any] = dict(image_env())
        for item in container.get("env", []):
            env[item["name"]] = item.get("value", item.get("valueFrom"))
        return env

    def security(self, container: dict[str, Any]) -> dict[str, Any]:
        """The container's effective security context: the pod's, overridden by its own."""
        pod = {k: v for k, v in self.spec.get("securityContext", {}).items()
               if k in ("runAsNonRoot", "runAsUser", "runAsGroup", "seccompProfile")}
        return {**pod, **container.get("securityContext", {})}

    def mount(self, container: dict[str, Any], path: str) -> dict[str, Any]:
        """The volume mount a path lies on (the deepest one)."""
        mounts = [m for m in container.get("volumeMounts", []) if under(path, m["mountPath"])]
        assert mounts, f"{container['name']}: {path} is on no volume (the root filesystem is read-only)"
        return max(mounts, key=lambda m: len(m["mountPath"]))

    def volume(self, name: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [v for v in self.spec.get("volumes", []) if v["name"] == name]
        assert len(found) == 1, f"volume {name}"
        return found[0]


@pytest.fixture(scope="module")
def pod() -> Pod:
    workloads = [d for d in load_all(SIDECAR) if d["kind"] in ("Deployment", "StatefulSet")]
    assert len(workloads) == 1
    spec = workloads[0]["spec"]["template"]["spec"]
    sidecars = [c for c in spec.get("initContainers", []) if c["name"] == "committer"]
    assert len(sidecars) == 1, "committer runs as an init container named committer"
    return Pod(workloads[0], spec, sidecars[0], spec["containers"])


def test_committer_is_a_native_sidecar(pod: Pod) -> None:
    assert pod.sidecar.get("restartPolicy") == "Always", "a native sidecar: an init container that stays running"
    assert pod.apps and all(c["name"] != "committer" for c in pod.apps)
    assert pod.workload["spec"]["replicas"] == 1, "one daemon per repository"
    if pod.workload["kind"] == "Deployment":
        assert pod.workload["spec"]["strategy"]["type"] == "Recreate"


def test_probes_point_at_the_port_the_env_enables(pod: Pod) -> None:
    address = parse_address("COMMITTER_HTTP", pod.env(pod.sidecar)["COMMITTER_HTTP"])
    assert address is not None and address[0] in ("0.0.0.0", "::"), "the kubelet probes the pod's IP"
    ports = {p.get("name"): p["containerPort"] for p in pod.sidecar["ports"]}
    assert address[1] in ports.values()

    def probe(kind: str) -> tuple[str, int]:
        action = pod.sidecar[kind]["httpGet"]
        port = action["port"]
        return action["path"], ports[port] if isinstance(port, str) else port

    assert probe("readinessProbe") == ("/readyz", address[1])
    assert probe("livenessProbe") == ("/healthz", address[1])
    if "startupProbe" in pod.sidecar:
        assert probe("startupProbe") == ("/readyz", address[1])


def test_token_comes_from_a_secret_file(pod: Pod) -> None:
    env = pod.env(pod.sidecar)
    assert "COMMITTER_TOKEN" not in env, "an env token cannot be rotated without a restart"
    token_file = env["COMMITTER_TOKEN_FILE"]
    mount = pod.mount(pod.sidecar, token_file)
    assert mount.get("readOnly") is True
    assert "subPath" not in mount, "a subPath mount never sees a rotated Secret"
    secret_volume = pod.volume(mount["name"])["secret"]
    key = Path(token_file).relative_to(mount["mountPath"]).as_posix()
    items = {item["path"]: item["key"] for item in secret_volume.get("items", [])}
    key = items.get(key, key)
    secrets = [d for d in load_all(SECRET) if d["kind"] == "Secret"]
    assert [s["metadata"]["name"] for s in secrets] == [secret_volume["secretName"]]
    assert key in {**secrets[0].get("stringData", {}), **secrets[0].get("data", {})}


def test_termination_grace_period_covers_the_last_push(pod: Pod) -> None:
    shutdown = parse_duration("shutdown", pod.env(pod.sidecar).get("COMMITTER_SHUTDOWN_TIMEOUT", "10s"))
    assert pod.spec["terminationGracePeriodSeconds"] > max(shutdown, DEFAULT_SHUTDOWN)


def test_security_context(pod: Pod) -> None:
    uid, _ = image_user()
    for container in [pod.sidecar, *pod.apps]:
        context = pod.security(container)
        assert context.get("runAsNonRoot") is True, container["name"]
        assert context.get("readOnlyRootFilesystem") is True, container["name"]
        assert context.get("allowPrivilegeEscalation") is False, container["name"]
        assert "ALL" in context.get("capabilities", {}).get("drop", []), container["name"]
        assert context.get("seccompProfile", {}).get("type") == "RuntimeDefault", container["name"]
    assert pod.security(pod.sidecar).get("runAsUser", uid) == uid


def test_data_volume_is_shared_and_every_written_path_is_writable(pod: Pod) -> None:
    env = pod.env(pod.sidecar)
    data = pod.mount(pod.sidecar, env["COMMITTER_DATA_DIR"])
    assert data.get("readOnly") is not True, "restore writes into the data directory"
    for app in pod.apps:
        assert data["name"] in {m["name"] for m in app.get("volumeMounts", [])}, app["name"]
    git = pod.mount(pod.sidecar, env["COMMITTER_GIT_DIR"])
    assert git["name"] != data["name"], "the repository lives outside the data directory"
    for name in ("COMMITTER_GIT_DIR", "HOME", "TMPDIR"):
        assert pod.mount(pod.sidecar, env[name]).get("readOnly") is not True, name
    claims = {d["metadata"]["name"] for d in load_all(SIDECAR) if d["kind"] == "PersistentVolumeClaim"}
    for volume in pod.spec["volumes"]:
        if "persistentVolumeClaim" in volume:
            assert volume["persistentVolumeClaim"]["claimName"] in claims


def test_resources(pod: Pod) -> None:
    resources = pod.sidecar["resources"]
    request, limit = quantity(resources["requests"]["memory"]), quantity(resources["limits"]["memory"])
    assert limit >= 64 * 2**20 and request <= limit  # the daemon alone peaks at ~45 MB on 100k files
    assert "cpu" in resources["requests"]


# -- compose ------------------------------------------------------------------------------------------


def _compose_env(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment", {})
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {**image_env(), **{k: str(v) for k, v in raw.items()}}


def _compose_mounts(service: dict[str, Any]) -> list[dict[str, Any]]:
    mounts = []
    for item in service.get("volumes", []):
        if isinstance(item, str):
            source, target, *mode = item.split(":")
            mounts.append({"source": source, "target": target, "read_only": "ro" in mode})
        else:
            mounts.append(item)
    tmpfs = service.get("tmpfs", [])
    for target in [tmpfs] if isinstance(tmpfs, str) else tmpfs:
        mounts.append({"source": None, "target": target, "read_only": False})
    return mounts


def _compose_mount(service: dict[str, Any], path: str) -> dict[str, Any]:
    found = [m for m in _compose_mounts(service) if under(path, m["target"])]
    assert found, f"{path} is on no volume (the root filesystem is read-only)"
    return max(found, key=lambda m: len(m["target"]))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    [doc] = load_all(COMPOSE)
    return doc


def test_compose_builds_this_image_and_shares_the_data_volume(compose: dict[str, Any]) -> None:
    committer = compose["services"]["committer"]
    build = committer["build"]
    context = (COMPOSE.parent / build["context"]).resolve()
    assert context == ROOT and (context / build["dockerfile"]).resolve() == CONTAINERFILE
    env = _compose_env(committer)
    data = _compose_mount(committer, env["COMMITTER_DATA_DIR"])
    assert data["source"] in compose["volumes"], "a named volume"
    apps = [s for name, s in compose["services"].items() if name != "committer"]
    assert apps
    for app in apps:
        assert data["source"] in {m["source"] for m in _compose_mounts(app)}
        assert app["depends_on"]["committer"]["condition"] == "service_healthy"
    git = _compose_mount(committer, env["COMMITTER_GIT_DIR"])
    assert git["source"] in compose["volumes"] and git["source"] != data["source"]
    assert committer.get("read_only") is True
    for name in ("COMMITTER_GIT_DIR", "HOME", "TMPDIR"):
        assert not _compose_mount(committer, env[name]).get("read_only"), name


def test_compose_token_is_a_secret_file(compose: dict[str, Any]) -> None:
    committer = compose["services"]["committer"]
    env = _compose_env(committer)
    assert "COMMITTER_TOKEN" not in env
    targets = {}
    for item in committer["secrets"]:
        source = item if isinstance(item, str) else item["source"]
        target = source if isinstance(item, str) else item.get("target", source)
        targets[target if target.startswith("/") else f"/run/secrets/{target}"] = source
    assert env["COMMITTER_TOKEN_FILE"] in targets
    assert "file" in compose["secrets"][targets[env["COMMITTER_TOKEN_FILE"]]]


def test_compose_health_stop_and_hardening(compose: dict[str, Any]) -> None:
    committer = compose["services"]["committer"]
    test = committer["healthcheck"]["test"]
    assert test[0] == "CMD" and not {"curl", "wget"} & set(test)
    installed = {dest for sources, dest, _ in copies() if "deploy/healthcheck.py" in sources}
    assert installed & set(test) and {"/readyz", "/healthz"} & set(test)
    assert parse_duration("stop_grace_period", committer["stop_grace_period"]) > DEFAULT_SHUTDOWN
    assert "ALL" in committer["cap_drop"]
    assert "no-new-privileges:true" in committer["security_opt"]
    assert "user" not in committer or committer["user"].split(":")[0] == str(image_user()[0])
