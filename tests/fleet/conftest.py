"""The fleet's real parts for its tests: a redis-server (append-only file in a temporary folder), a PostgreSQL
cluster (initdb'ed once a session, a fresh database a test), and the fleet's configuration over both back
ends. A missing binary skips the tests that need it with one line naming it."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, wait_for
from tests.gitserver import GitHTTPServer, git


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# Redis


class RedisServer:
    """redis-server on 127.0.0.1:`port`, persisting every write to its append-only file in `folder`; stop and
    start it again on the same port and data to restart it."""

    def __init__(self, folder: Path, fsync: str = "always") -> None:
        """`fsync`: Redis's appendfsync (the tests: always; as docs/fleet.md deploys it: everysec)."""
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (scripts/system-deps.sh installs it)")
        self.binary = binary
        self.folder = folder
        self.fsync = fsync
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                "--appendonly", "yes", "--appendfsync", self.fsync, "--save", "", "--protected-mode", "no",
                "--logfile", str(self.folder / "redis.log")]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _listening(self.port) or self.proc is None or self.proc.poll() is not None,
                 timeout=10, what="redis-server to listen")
        assert self.proc.poll() is None, (self.folder / "redis.log").read_text()

    def stop(self) -> None:
        """SIGTERM: redis-server writes what it holds and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None

    def cli(self, *args: str) -> str:
        tool = shutil.which("redis-cli")
        assert tool is not None, "redis-cli is not installed"
        return subprocess.run([tool, "-p", str(self.port), *args], capture_output=True, check=True,
                              timeout=10).stdout.decode("utf-8", "replace")

    def everything(self) -> bytes:
        """Every key and every value (DUMP), and the append-only files: what the broker keeps."""
        out = []
        for key in self.cli("--scan").split():
            out.append(key.encode())
            out.append(self.cli("--no-raw", "DUMP", key).encode())
        for path in self.folder.rglob("*"):
            if path.is_file():
                out.append(path.read_bytes())
        return b"\n".join(out)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


# PostgreSQL


@dataclass
class Postgres:
    port: int

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, *args: str, database: str = "postgres") -> str:
        tool = shutil.which("psql") or _pg_bin("psql")
        return subprocess.run([tool, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
                               "-v", "ON_ERROR_STOP=1", "-Atq", *args], capture_output=True, check=True,
                              timeout=30).stdout.decode()


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else ""


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One PostgreSQL cluster for the session, initdb'ed in a temporary folder, on 127.0.0.1 and a free port
    (as the postgres user when the tests run as root: PostgreSQL refuses to run as root)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL is not installed (scripts/system-deps.sh installs postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="fleet-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    subprocess.run([*run_as, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                    "--no-sync"], capture_output=True, check=True, timeout=120)
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run([*run_as, pg_ctl, "-D", str(data), "-l", str(folder / "log"), "-o", options, "-w", "start"],
                   capture_output=True, check=True, timeout=60)
    try:
        yield Postgres(port)
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True,
                       check=False, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres: Postgres) -> Iterator[str]:
    """A fresh database of the session's cluster, dropped after the test."""
    name = "fleet_" + uuid.uuid4().hex[:12]
    postgres.psql("-c", f"CREATE DATABASE {name}")
    try:
        yield postgres.url(name)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            postgres.psql("-c", f"DROP DATABASE {name} WITH (FORCE)")


# The fleet over both back ends


TOKEN = "ghp_FleetToken0123456789abcdefABCDEF0000"
CREDENTIAL = "loopback"


class Fleet:
    """A fleet's configuration in a temporary folder (retry base 1 s, a short lease), its store, its worker
    and beat processes (their output in log files), and a source on the loopback git server."""

    def __init__(self, tmp: Path, db: str, broker: str, redis: RedisServer | None, server: GitHTTPServer) -> None:
        from committer.fleet import processes
        from committer.fleet.config import FleetConfig

        self.tmp, self.redis, self.server = tmp, redis, server
        credentials = tmp / "credentials"
        credentials.mkdir()
        (credentials / CREDENTIAL).write_text(f"x-access-token:{TOKEN}\n")
        self.config = FleetConfig(repos_dir=tmp / "repos", db=db, broker=broker, credentials_dir=credentials,
                                  retry_base=1.0, lease=3.0, sync_interval=3600.0, git_timeout=120.0)
        self.store = processes.prepare(self.config)
        self.org = self.store.create_organisation("team")
        self.logs = tmp / "logs"
        self.logs.mkdir()
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def source(self) -> str:
        return self.server.url

    def start(self, role: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """`python -m committer.fleet ROLE`, configured by its environment, its output in logs/."""
        from committer.fleet import processes

        out = (self.logs / f"{role}-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "committer.fleet", role, *args], stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT), "COMMITTER_LOG_FORMAT": "json",
                                     **processes.environ(self.config), **env})
        out.close()
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """kill -9 of the process and everything it started (its pool processes, their git): a machine lost."""
        family = [proc.pid, *descendants(proc.pid)]
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc)
        self.store.engine.dispose()

    def repository(self, name: str, source: bool = True, mirror: bool = False) -> int:
        from committer.fleet.store import NewRepository

        repo = self.store.create_repository(NewRepository(
            name=name, organisation_id=self.org.id, source_url=self.source if source else "",
            is_mirror=mirror, credential=CREDENTIAL if source else ""))
        return repo.id

    def submit(self, repo_id: int, kind: str, force: bool = False) -> str:
        """A task row and its message, as the API makes them."""
        from committer.fleet import queue

        task = self.store.new_task(repo_id, kind, force)
        queue.send(self.config, task)
        return task.task_id

    def wait_task(self, task_id: str, status: str = "succeeded", timeout: float = 30) -> Any:
        def ended() -> Any:
            task = self.store.task(task_id)
            if task.status in ("succeeded", "failed") and task.status != status:
                raise AssertionError(f"task {task_id} {task.status}: {task.error_message}\n{self.output()}")
            return task if task.status == status else None

        return wait_for(ended, timeout=timeout, what=f"task {task_id} to be {status}", interval=0.1)

    def output(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-4000:] for path in sorted(self.logs.iterdir()))


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (from /proc's parent ids), deepest last."""
    parents: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = Path(stat).read_text()
            fields = text[text.rindex(")") + 2:].split()
            parents.setdefault(int(fields[1]), []).append(int(Path(stat).parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found.extend(children)
        todo.extend(children)
    return found


def seed(server: GitHTTPServer, commits: int = 3, branch: str = "main") -> None:
    """Commits on the served repository (pushed straight to its folder)."""
    work = server.root.parent / f"seed-{uuid.uuid4().hex[:8]}"
    if server.head(branch):
        git("clone", "--quiet", "--branch", branch, str(server.repo), str(work))
    else:
        git("init", "--quiet", f"--initial-branch={branch}", str(work))
    for n in range(commits):
        (work / "file.txt").write_text(f"{uuid.uuid4().hex} {n}\n")
        git("add", "file.txt", cwd=work)
        git("commit", "--quiet", "-m", f"change {n}", cwd=work)
    git("push", "--quiet", str(server.repo), f"HEAD:refs/heads/{branch}", cwd=work)
    shutil.rmtree(work)


@pytest.fixture
def source(tmp_path: Path) -> Iterator[GitHTTPServer]:
    """The loopback smart-HTTP git server with token auth, serving one repository with three commits."""
    server = GitHTTPServer(tmp_path / "served", token=TOKEN, name="src.git")
    server.start()
    seed(server)
    try:
        yield server
    finally:
        server.set_mode("normal")
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def fleet(request: pytest.FixtureRequest, tmp_path: Path, source: GitHTTPServer) -> Iterator[Fleet]:
    """The fleet on SQLite with the embedded broker, then on PostgreSQL with Redis."""
    redis: RedisServer | None = None
    db = broker = ""
    if request.param == "postgres":
        db = request.getfixturevalue("postgres_url")
        redis = request.getfixturevalue("redis")
        broker = redis.url
    made = Fleet(tmp_path, db, broker, redis, source)
    try:
        yield made
    finally:
        made.stop()
