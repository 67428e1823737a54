"""committer fleet's benchmark: migrations by two workers, no-op syncs, ListRepositories pages, import memory.

    python bench/fleet.py [--quick] [--only migrate|noop|list|memory]

Every figure is set against a baseline measured in the same run on the same machine:
1. N repositories migrated (mirror clones) from the loopback smart-HTTP server by two worker processes (each at
   `committer fleet worker`'s default concurrency, the machine's cores; `--concurrency` for another), Redis as
   docs/fleet.md deploys it (appendonly, fsync every second), SQLite state, from the first CreateRepository to
   the last repository `active`, against a sequential `git clone --mirror` loop of the same repositories.
2. M repositories synced when nothing changed upstream: the fleet's wall time per sync (two workers) against one
   bare `git fetch` of one repository.
3. ListRepositories over 10,000 rows, page by page (50 a page), through the real gRPC server: p95 per page, on
   SQLite and on PostgreSQL.
4. Peak memory (max RSS) of a worker process importing a 100,000-commit repository, against the same process
   initializing an empty repository.

It asserts nothing; the report goes to stdout and bench/out/fleet.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from committer.cli.fleet import CPUS  # noqa: E402  (`committer fleet worker`'s default concurrency)
from committer.core import logs  # noqa: E402
from committer.fleet import fleet_pb2 as pb  # noqa: E402
from committer.fleet import fleet_pb2_grpc as pb_grpc  # noqa: E402
from committer.fleet import processes, rpc  # noqa: E402
from committer.fleet.config import FleetConfig  # noqa: E402
from committer.fleet.db import GitRepository, session  # noqa: E402
from tests.fleet.conftest import Postgres, RedisServer, free_port  # noqa: E402
from tests.gitserver import GitHTTPServer  # noqa: E402

OUT = ROOT / "bench" / "out" / "fleet.md"
TOKEN = "ghp_BenchToken0123456789abcdefABCDEF000000"
REDIS_FSYNC = "everysec"  # docs/fleet.md's Redis: appendonly yes, Redis's default appendfsync
GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}


def say(text: str) -> None:
    print(f"[fleet bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def git(*args: str, cwd: Path | None = None, input: bytes | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, input=input, check=True, capture_output=True)


def history(target: Path, commits: int) -> None:
    """A bare repository with `commits` commits on main (one small file changing), built by fast-import."""
    git("init", "-q", "--bare", "--initial-branch=main", str(target))
    lines = []
    for n in range(1, commits + 1):
        body = f"line {n}\n".encode()
        message = f"change {n}\n".encode()
        lines.append(b"commit refs/heads/main\n")
        lines.append(f"committer Bench <bench@example.com> {1_700_000_000 + n} +0000\n".encode())
        lines.append(b"data %d\n%s" % (len(message), message))
        lines.append(b"M 100644 inline notes.md\ndata %d\n%s\n" % (len(body), body))
    git("--git-dir", str(target), "fast-import", "--quiet", input=b"".join(lines))


def served(root: Path, count: int, commits: int = 30) -> list[str]:
    """`count` bare repositories under `root` (copies of one history), their names."""
    template = root / "template.src"
    history(template, commits)
    names = [f"r{n:04d}.git" for n in range(count)]
    for name in names:
        shutil.copytree(template, root / name)
    shutil.rmtree(template)
    return names


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


class Running:
    """The API (`python -m committer.fleet api`, its own process as deployed: not sharing this process, which
    holds the git server, with it) and `workers` worker processes (`python -m committer.fleet worker`)."""

    def __init__(self, config: FleetConfig, workers: int, logs: Path, concurrency: int = 1) -> None:
        self.config = config
        self.store = processes.prepare(config)
        env = {**os.environ, "PYTHONPATH": str(ROOT), **processes.environ(config)}
        logs.mkdir(parents=True, exist_ok=True)
        self.api = subprocess.Popen([sys.executable, "-m", "committer.fleet", "api"], stdout=(logs / "api.log").open(
            "wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.channel = grpc.insecure_channel(config.grpc)
        grpc.channel_ready_future(self.channel).result(timeout=120)
        self.stub = pb_grpc.RepositoryServiceStub(self.channel)
        self.procs = [subprocess.Popen([sys.executable, "-m", "committer.fleet", "worker", "--concurrency",
                                        str(concurrency)],
                                       stdout=(logs / f"worker-{n}.log").open("wb"), stderr=subprocess.STDOUT,
                                       env=env, start_new_session=True) for n in range(workers)]
        deadline = time.monotonic() + 120  # timed from ready workers: their start-up is not a migration's cost
        while not all("worker ready" in (logs / f"worker-{n}.log").read_text() for n in range(workers)):
            if time.monotonic() > deadline:
                raise TimeoutError("the workers did not say they were ready")
            time.sleep(0.05)

    def wait_all(self, status: str, count: int, timeout: float = 3600) -> None:
        """Asked five times a second: the watcher's queries take no CPU the fleet needs (±0.1 s on the wall)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with session(self.store.engine) as db:
                done = db.query(GitRepository).filter(GitRepository.status.in_((status, "failed"))).count()
            if done >= count:
                return
            time.sleep(0.2)
        raise TimeoutError(f"{count} repositories {status}")

    def close(self) -> None:
        for proc in self.procs:
            processes.stop_child(proc)
        self.channel.close()
        processes.stop_child(self.api)
        self.store.engine.dispose()


def config_for(base: Path, db: str, broker: str) -> FleetConfig:
    credentials = base / "credentials"
    credentials.mkdir(parents=True, exist_ok=True)
    (credentials / "loopback").write_text(f"x-access-token:{TOKEN}\n")
    return FleetConfig(repos_dir=base / "repos", db=db, broker=broker, credentials_dir=credentials,
                       grpc=f"127.0.0.1:{free_port()}", http=f"127.0.0.1:{free_port()}",
                       sync_interval=86_400.0, lease=60.0)


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user and system) of these processes, every process below them, and the children they
    reaped, from /proc (processes gone meanwhile count nothing)."""
    from tests.fleet.conftest import descendants

    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in {*pids, *(child for top in pids for child in descendants(top))}:
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = Path(f"/proc/{pid}/stat").read_text()
            fields = text[text.rindex(")") + 2:].split()
            total += sum(int(fields[n]) for n in (11, 12, 13, 14)) / ticks  # utime, stime, cutime, cstime
    return total


def own_cpu() -> float:
    """CPU seconds of this process (the git server's threads, the API) and of the children it reaped."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def migrate(base: Path, count: int, redis: RedisServer, syncs: int, local: bool = False,
            latency: float = 0.0, concurrency: int = 1) -> tuple[list[str], dict[str, float]]:
    """Section 1 (and the set-up of section 2): `count` repositories migrated by two workers; `local`: from
    file:// URLs (git's own upload-pack, no HTTP server) instead of the loopback smart-HTTP server; `latency`:
    seconds the server waits before each answer (a git host across a network, not on these two cores)."""
    served_root = base / "served"
    server = GitHTTPServer(served_root, token=TOKEN)
    server.latency = latency
    every = served(served_root, max(count, syncs))
    names = every[:count]
    server.start()
    url = f"file://{served_root}" if local else server.url.rsplit("/", 1)[0]
    header = "Authorization: Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    say(f"baseline: sequential git clone --mirror of {count} repositories")
    clones = base / "clones"
    clones.mkdir()
    cpu = own_cpu()
    began = time.monotonic()
    for name in names:
        git("-c", f"http.extraHeader={header}", "clone", "-q", "--mirror", f"{url}/{name}", str(clones / name))
    baseline = time.monotonic() - began
    baseline_cpu = own_cpu() - cpu
    shutil.rmtree(clones)
    config = config_for(base / "fleet", f"sqlite:///{base / 'fleet.db'}", redis.url)
    fleet = Running(config, 2, base / "logs", concurrency)
    try:
        org = fleet.stub.CreateOrganisation(pb.CreateOrganisationRequest(slug="bench"))
        say(f"fleet: {count} migrations by two workers, {concurrency} tasks at a time each")
        workers = [proc.pid for proc in fleet.procs]
        watched = workers + [fleet.api.pid] + ([redis.proc.pid] if redis.proc else [])
        cpu, worker_cpu = own_cpu() + cpu_seconds(watched), cpu_seconds(workers)
        began = time.monotonic()
        for name in names:
            fleet.stub.CreateRepository(pb.CreateRepositoryRequest(
                name=name.removesuffix(".git"), organisation_id=org.id, source_url=f"{url}/{name}",
                source_type="custom", is_mirror=True, is_bare=True, credential="" if local else "loopback"))
        fleet.wait_all("active", count)
        migrated = time.monotonic() - began
        fleet_cpu = own_cpu() + cpu_seconds(watched) - cpu
        worker_cpu = cpu_seconds(workers) - worker_cpu
        failed = fleet.store.counts()["repositories"].get("failed", 0)
        _, durations = fleet.store.task_stats()
        timed = durations.get(("migrate", "succeeded"))
        say(f"migrations: {migrated:.2f} s wall; inside the tasks {timed.seconds if timed else 0:.2f} s for "
            f"{timed.count if timed else 0}")
        figures = {"baseline": baseline, "fleet": migrated, "failed": failed, "baseline_cpu": baseline_cpu,
                   "fleet_cpu": fleet_cpu, "worker_cpu": worker_cpu}
        if syncs <= 0:
            return names, figures
        if syncs > count:  # section 2's set: more repositories, migrated untimed
            say(f"fleet: {syncs - count} more migrations for section 2")
            for name in every[count:]:
                fleet.stub.CreateRepository(pb.CreateRepositoryRequest(
                    name=name.removesuffix(".git"), organisation_id=org.id, source_url=f"{url}/{name}",
                    source_type="custom", is_mirror=True, is_bare=True, credential="" if local else "loopback"))
            fleet.wait_all("active", syncs)
        figures.update(noop(fleet, org.id, syncs, base, url, header))
        return names, figures
    finally:
        fleet.close()
        server.stop()


def noop(fleet: Running, org_id: int, count: int, base: Path, url: str, header: str) -> dict[str, float]:
    """Section 2: every repository synced with nothing new upstream."""
    one = base / "one.git"
    git("-c", f"http.extraHeader={header}", "clone", "-q", "--mirror", f"{url}/r0000.git", str(one))
    fetches = []
    for _ in range(15):
        began = time.monotonic()
        git("-c", f"http.extraHeader={header}", "--git-dir", str(one), "fetch", "-q", "--prune", "origin")
        fetches.append(time.monotonic() - began)
    ids, token = [], ""
    while True:
        page = fleet.stub.ListRepositories(pb.ListRepositoriesRequest(organisation_id=org_id, page_size=500,
                                                                      page_token=token))
        ids += [repo.id for repo in page.repositories]
        token = page.next_page_token
        if not token:
            break
    say(f"fleet: {len(ids)} no-op syncs by two workers")
    began = time.monotonic()
    tasks = [fleet.stub.SyncRepository(pb.SyncRepositoryRequest(repository_id=rid)).task_id for rid in ids]
    deadline = time.monotonic() + 3600
    pending = set(tasks)
    while pending and time.monotonic() < deadline:
        pending = {t for t in pending if fleet.store.task(t).status not in ("succeeded", "failed")}
        time.sleep(0.05)
    elapsed = time.monotonic() - began
    inside = [(row.finished_at - row.started_at).total_seconds() for row in map(fleet.store.task, tasks)
              if row.finished_at and row.started_at]
    return {"fetch": statistics.median(fetches), "noop_total": elapsed, "noop_each": elapsed / max(1, len(ids)),
            "noop_count": len(ids), "noop_inside": statistics.median(inside) if inside else 0.0}


def listing(base: Path, rows: int, db: str) -> dict[str, float]:
    """Section 3: ListRepositories page by page over `rows` rows through the real gRPC server."""
    config = config_for(base, db, "memory://")
    store = processes.prepare(config)
    org = store.create_organisation("list")
    with session(store.engine) as opened:
        opened.add_all([GitRepository(organisation_id=org.id, name=f"repo-{n:05d}", status="active",
                                      local_path=f"/git/list/repo-{n:05d}") for n in range(rows)])
    server = rpc.serve_grpc(config, store, lambda task: None)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stub = pb_grpc.RepositoryServiceStub(channel)
    try:
        times, token, seen = [], "", 0
        while True:
            began = time.perf_counter()
            page = stub.ListRepositories(pb.ListRepositoriesRequest(page_size=50, page_token=token))
            times.append(time.perf_counter() - began)
            seen += len(page.repositories)
            token = page.next_page_token
            if not token:
                break
        return {"p50": statistics.median(times), "p95": percentile(times, 95), "pages": len(times), "seen": seen}
    finally:
        channel.close()
        server.stop(1)
        store.engine.dispose()


_MEMORY = """
import os, sys
from committer.core import logs
logs.configure("json", "warning", stream=open(os.devnull, "w"))
from pathlib import Path
from committer.fleet import processes
from committer.fleet.config import FleetConfig
from committer.fleet.store import NewRepository
from committer.fleet.work import Work
base, source = Path(sys.argv[1]), sys.argv[2]
config = FleetConfig(repos_dir=base / "repos", db=f"sqlite:///{base / 'fleet.db'}", broker="memory://")
store = processes.prepare(config)
org = store.create_organisation("memory")
repo = store.create_repository(NewRepository(name="big", organisation_id=org.id, source_url=source, is_mirror=True))
task = store.new_task(repo.id, "migrate" if source else "initialize")
synced = Work(config, store).run(task.task_id)
# VmHWM: this process's own peak (ru_maxrss would carry the parent's across exec)
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(peak, store.commit_count(repo.id))
"""


def memory(base: Path, commits: int) -> dict[str, float]:
    """Section 4: a worker's peak memory importing a `commits`-commit history, against an empty repository."""
    source = base / "big.git"
    say(f"building a {commits:,}-commit repository")
    history(source, commits)
    results = {}
    for label, url in (("empty", ""), ("big", str(source))):
        folder = base / label
        folder.mkdir()
        began = time.monotonic()
        out = subprocess.run([sys.executable, "-c", _MEMORY, str(folder), url], capture_output=True, check=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.decode().split()
        results[f"{label}_seconds"] = time.monotonic() - began
        results[f"{label}_rss"] = int(out[0]) / 1024
        results[f"{label}_commits"] = int(out[1])
    began = time.monotonic()
    git("clone", "-q", "--mirror", str(source), str(base / "plain.git"))
    subprocess.run(["git", "--git-dir", str(base / "plain.git"), "log", "--all", "--format=%H%x00%an%x00%ae%x00%ct"
                    "%x00%s"], env=GIT_ENV, check=True, stdout=subprocess.DEVNULL)
    results["git_seconds"] = time.monotonic() - began
    return results


def inline(base: Path, count: int) -> dict[str, float]:
    """Section 2b: no-op syncs run one after the other by one `Work` in this process (no queue, no second
    worker sharing the cores), from a loopback source: the sync's own cost, and its git processes."""
    from committer.fleet.store import NewRepository
    from committer.fleet.work import Work
    from committer.git.runner import GitRunner

    class Counting(GitRunner):
        started = 0

        def start(self, *args: object, **kwargs: object) -> subprocess.Popen[bytes]:
            Counting.started += 1
            return super().start(*args, **kwargs)  # type: ignore[arg-type]

    served_root = base / "served"
    server = GitHTTPServer(served_root, token=TOKEN)
    served(served_root, 1)
    server.start()
    try:
        config = config_for(base / "fleet", "", "")
        store = processes.prepare(config)
        org = store.create_organisation("bench")
        repo = store.create_repository(NewRepository(
            name="one", organisation_id=org.id, source_url=server.url.rsplit("/", 1)[0] + "/r0000.git",
            is_mirror=True, credential="loopback"))
        work = Work(config, store, runner=Counting(timeout=60), worker="bench:1")
        work.run(store.new_task(repo.id, "migrate").task_id)
        Counting.started = 0
        times = []
        for _ in range(count):
            task_id = store.new_task(repo.id, "sync").task_id
            began = time.monotonic()
            work.run(task_id)
            times.append(time.monotonic() - began)
        store.engine.dispose()
        return {"inline_each": statistics.median(times), "inline_git": Counting.started / count}
    finally:
        server.stop()


@contextlib.contextmanager
def postgres_cluster(base: Path) -> Iterator[str]:
    """A throwaway PostgreSQL cluster (the tests' own starter), one database."""
    from tests.fleet import conftest

    starter = conftest.postgres.__wrapped__()  # the session fixture's generator, outside pytest
    cluster: Postgres = next(starter)
    try:
        cluster.psql("-c", "CREATE DATABASE bench")
        yield cluster.url("bench")
    finally:
        with contextlib.suppress(StopIteration):
            next(starter)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="committer fleet's benchmark")
    parser.add_argument("--quick", action="store_true", help="40 migrations, 40 no-op syncs, 2,000 rows, 20k commits "
                        "[200, 1,000, 10,000, 100k]")
    parser.add_argument("--only", choices=("migrate", "noop", "list", "memory"))
    parser.add_argument("--file", action="store_true", help="migrate from file:// URLs, not the HTTP server")
    parser.add_argument("--latency", type=float, default=20.0, metavar="MS",
                        help="a second migration run with the server answering each request this much later, as a "
                             "host across a network does (0: none) [20]")
    parser.add_argument("--migrations", type=int, help="repositories migrated in section 1 [200; quick: 40]")
    parser.add_argument("--syncs", type=int, help="no-op syncs of section 2 [1,000; quick: 40]")
    parser.add_argument("--concurrency", type=int, default=CPUS, metavar="N",
                        help=f"tasks each worker runs at once [`committer fleet worker`'s default: {CPUS}]")
    args = parser.parse_args(argv)
    count = args.migrations or (40 if args.quick else 200)
    syncs = args.syncs or (40 if args.quick else 1000)
    rows = 2_000 if args.quick else 10_000
    commits = 20_000 if args.quick else 100_000
    logs.configure("json", "warning", stream=open(os.devnull, "w"))  # noqa: SIM115 - for the whole run
    base = Path(tempfile.mkdtemp(prefix="committer-fleet-bench-"))
    lines = ["# committer fleet benchmark", "",
             f"`python bench/fleet.py {' '.join(sys.argv[1:] if argv is None else argv)}` — "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores", "",
             "| what | fleet | baseline (same run) | ratio | target |", "| --- | --- | --- | --- | --- |"]
    try:
        if args.only in (None, "migrate"):
            redis = RedisServer(base / "redis", fsync=REDIS_FSYNC)
            redis.start()
            try:
                _, fig = migrate(base / "migrate", count, redis, syncs, local=args.file, concurrency=args.concurrency)
            finally:
                redis.stop()
            where = "file:// sources" if args.file else "the loopback HTTP server"
            lines.append(f"| {count} migrations from {where}, two workers ({args.concurrency} tasks at a time each; "
                         f"Redis, SQLite) | {fig['fleet']:.1f} s "
                         f"({fig['failed']:.0f} failed) | sequential `git clone --mirror`: {fig['baseline']:.1f} s "
                         f"| {fig['baseline'] / fig['fleet']:.2f}x faster | 1.5x faster |")
            if args.latency > 0 and not args.file:
                redis = RedisServer(base / "redis-latency", fsync=REDIS_FSYNC)
                redis.start()
                try:
                    _, far = migrate(base / "migrate-latency", count, redis, 0, latency=args.latency / 1000,
                                     concurrency=args.concurrency)
                finally:
                    redis.stop()
                lines.append(f"| the same, the server answering each request {args.latency:g} ms later (a host "
                             f"across a network) | {far['fleet']:.1f} s ({far['failed']:.0f} failed) | sequential "
                             f"`git clone --mirror`: {far['baseline']:.1f} s | {far['baseline'] / far['fleet']:.2f}x "
                             f"faster | 1.5x faster |")
            lines.append(f"| the same, CPU seconds of every process (git, server, workers, Redis, API) "
                         f"| {fig['fleet_cpu']:.1f} s (the workers and their git {fig['worker_cpu']:.1f} s), "
                         f"best wall on 2 cores {fig['fleet_cpu'] / 2:.1f} s "
                         f"| {fig['baseline_cpu']:.1f} s ({fig['baseline_cpu'] / fig['baseline']:.2f} cores busy) "
                         f"| at most {2 * fig['baseline'] / fig['fleet_cpu']:.2f}x | |")
            lines.append(f"| {fig['noop_count']:.0f} no-op syncs, two workers "
                         f"| {fig['noop_each'] * 1000:.0f} ms a sync ({fig['noop_total']:.1f} s) "
                         f"| one `git fetch`: {fig['fetch'] * 1000:.0f} ms "
                         f"| {fig['noop_each'] / fig['fetch']:.2f}x | reference |")
            lines.append(f"| the same, inside one task (claimed to succeeded), median "
                         f"| {fig['noop_inside'] * 1000:.0f} ms | one `git fetch`: {fig['fetch'] * 1000:.0f} ms "
                         f"| {fig['noop_inside'] / fig['fetch']:.2f}x | reference |")
        if args.only in (None, "noop"):
            fig = inline(base / "inline", syncs)
            lines.append(f"| {syncs} no-op syncs one after the other, in one process (no queue) "
                         f"| {fig['inline_each'] * 1000:.0f} ms a sync, {fig['inline_git']:.1f} git processes a sync "
                         f"| | | reference |")
        if args.only in (None, "list"):
            for label, url_maker in (("SQLite", lambda: contextlib.nullcontext(f"sqlite:///{base / 'list.db'}")),
                                     ("PostgreSQL", lambda: postgres_cluster(base / "pg"))):
                with url_maker() as url:
                    fig = listing(base / f"list-{label}", rows, url)
                lines.append(f"| ListRepositories over {rows:,} rows, {fig['pages']:.0f} pages of 50, {label} "
                             f"| p95 {fig['p95'] * 1000:.1f} ms (p50 {fig['p50'] * 1000:.1f} ms) | | | p95 < 50 ms |")
        if args.only in (None, "memory"):
            fig = memory(base / "memory", commits)
            lines.append(f"| peak RSS importing {fig['big_commits']:,.0f} commits | {fig['big_rss']:.0f} MiB "
                         f"({fig['big_seconds']:.1f} s) | the same worker, empty repository: {fig['empty_rss']:.0f} MiB"
                         f"; `git clone --mirror` + `git log`: {fig['git_seconds']:.1f} s "
                         f"| +{fig['big_rss'] - fig['empty_rss']:.0f} MiB | bounded |")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    lines.append("")
    lines.append(f"Peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB.")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
