"""Sections 3 and 4: `committer run` as a process on the tree, beside a bare watchdog observer."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import gitruns
import procs
from report import Row, Section, med, ms, ratio, spread
from workload import Tree

from committer.git.objects import blob_id

DEBOUNCE_FLAG, DEBOUNCE = "200ms", 0.2
WRITE_GAP = 0.3  # between latency writes, so that each write is a batch of its own
SETTLE = 2.0  # after `daemon_ready`, before the idle window opens
IMPORTS = "import committer.cli, committer.watch.watcher"


@dataclass
class Watching:
    """What the runs measured, all in seconds, MB or percent of a core."""

    interpreter: list[float] = field(default_factory=list)
    imports: list[float] = field(default_factory=list)
    imports_mb: float = 0.0
    probe_ready: float = 0.0
    probe_schedule: float = 0.0
    probe_mb: float = 0.0
    probe_idle: float = 0.0
    first_ready: float = 0.0
    first_inner: float = 0.0
    idle: float = 0.0
    ticks: int = 0
    latencies: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)
    verified: int = 0
    peak_mb: float = 0.0
    again: list[float] = field(default_factory=list)
    again_inner: list[float] = field(default_factory=list)
    again_mb: list[float] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=dict)  # daemon_ready's <phase>_s, later starts
    first_phases: dict[str, list[float]] = field(default_factory=dict)  # the same, first start after init
    cpu: dict[str, list[float]] = field(default_factory=dict)  # daemon_ready's cpu_seconds, git_cpu_seconds
    first_cpu: dict[str, list[float]] = field(default_factory=dict)


def spawn_time(argv: Sequence[str], env: dict[str, str]) -> tuple[float, str]:
    """(process start to exit, its stdout)."""
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - started, proc.stdout


def measure(
    tree: Tree, git_dir: Path, env: dict[str, str], idle: float, writes: int, restarts: int,
    live: list[procs.DaemonProcess | procs.ObserverProbe], tell: Callable[[str], None],
) -> Watching:
    """Observer probe; first daemon start after init; idle window; latency writes; restarts."""
    out = Watching()
    procs.warm_bytecode(env)
    hwm = "import pathlib; print([l for l in pathlib.Path('/proc/self/status').read_text().split('\\n') " \
          "if l.startswith('VmHWM')][0].split()[1])"
    for _ in range(3):
        out.interpreter.append(spawn_time([sys.executable, "-c", "pass"], env)[0])
        elapsed, text = spawn_time([sys.executable, "-c", f"{IMPORTS}; {hwm}"], env)
        out.imports.append(elapsed)
        out.imports_mb = int(text.split()[-1]) / 1024

    tell("bare watchdog observer")
    probe = procs.ObserverProbe(tree.data, env)
    live.append(probe)
    out.probe_ready, out.probe_schedule = probe.wait_ready()
    out.probe_mb = procs.status_mb(probe.pid, "VmHWM")

    tell("first start of `committer run` after `committer init`")
    daemon = procs.DaemonProcess(tree.data, git_dir, env, DEBOUNCE_FLAG)
    live.append(daemon)
    out.first_ready, out.first_inner = daemon.wait_ready()
    phases(daemon, out.first_phases, out.first_cpu)
    time.sleep(SETTLE)
    tell(f"idle CPU over {idle:.0f} s (daemon and observer side by side)")
    d0, o0, t0 = procs.cpu_seconds(daemon.pid), procs.cpu_seconds(probe.pid), time.monotonic()
    time.sleep(idle)
    d1, o1, t1 = procs.cpu_seconds(daemon.pid), procs.cpu_seconds(probe.pid), time.monotonic()
    out.idle = (d1 - d0) / (t1 - t0) * 100
    out.probe_idle = (o1 - o0) / (t1 - t0) * 100
    out.ticks = round((d1 - d0) * procs.CLK_TCK)
    probe.stop()

    tell(f"{writes} writes, waiting for each commit")
    checks = write_and_wait(tree, daemon, writes, out)
    out.peak_mb = procs.status_mb(daemon.pid, "VmHWM")
    daemon.stop()
    for sha, rel, blob, files in checks:
        if files != 1 or gitruns.git(git_dir, "rev-parse", f"{sha}:{rel}") != blob:
            raise RuntimeError(f"commit {sha} does not hold exactly the write of {rel}")
    out.verified = len(checks)

    for i in range(restarts):
        tell(f"restart {i + 1} of {restarts}")
        daemon = procs.DaemonProcess(tree.data, git_dir, env, DEBOUNCE_FLAG)
        live.append(daemon)
        ready, inner = daemon.wait_ready()
        phases(daemon, out.phases, out.cpu)
        out.again.append(ready)
        out.again_inner.append(inner)
        out.again_mb.append(procs.status_mb(daemon.pid, "VmHWM"))
        daemon.stop()
    return out


def phases(daemon: procs.DaemonProcess, into: dict[str, list[float]], cpu: dict[str, list[float]]) -> None:
    """The start-up phases `daemon_ready` names (`<phase>_s`), added to `into`; its CPU seconds (the
    daemon's process from the interpreter's start, and the git processes it ran) to `cpu`."""
    _, record = daemon.log.wait_for(procs.event("daemon_ready"), 0, 5.0)
    for key, value in record.items():
        if key.endswith("_s") and isinstance(value, (int, float)):
            into.setdefault(key[:-2], []).append(float(value))
        elif key in ("cpu_seconds", "git_cpu_seconds") and isinstance(value, (int, float)):
            cpu.setdefault(key, []).append(float(value))


def write_and_wait(
    tree: Tree, daemon: procs.DaemonProcess, writes: int, out: Watching
) -> list[tuple[str, str, str, int]]:
    """Rewrite one file at a time and wait (with a deadline) for the commit that holds it."""
    checks = []
    start = len(daemon.log.records)
    for index in tree.pick(writes, offset=11):
        rel = tree.rel(index)
        data = tree.content(index, tree.next_rev())
        with open(tree.data / rel, "wb") as handle:
            handle.write(data)
        written = time.time()
        at, record = daemon.log.wait_for(procs.event("git_commit"), start, timeout=30.0)
        start = at + 1
        out.latencies.append(procs.epoch(record["timestamp"]) - written - DEBOUNCE)
        out.steps.append(float(record["duration_ms"]) / 1000)
        checks.append((str(record["sha"]), rel, blob_id(data), int(record["files"])))
        time.sleep(WRITE_GAP)
    return checks


def cpu_at_ready(cpu: dict[str, list[float]]) -> str:
    """`; CPU 1.05 s + git 0.48 s`: medians of `daemon_ready`'s cpu_seconds and git_cpu_seconds, the
    figures load changes least (a tree without them says nothing)."""
    if not cpu.get("cpu_seconds"):
        return ""
    return f"; CPU {ms(med(cpu['cpu_seconds']))} + git {ms(med(cpu.get('git_cpu_seconds') or [0.0]))}"


def rows(name: str, got: Watching, idle: float, latency: Section, startup: Section) -> None:
    """Fill sections 3 and 4."""
    lat = got.latencies
    p90 = statistics.quantiles(lat, n=10)[-1] if len(lat) >= 2 else lat[0]
    latency.rows.append(Row(
        f"{name} tree: write → `git_commit` logged, minus the debounce",
        spread(lat), f"commit step {ms(med(got.steps))}", "—", "< 50 ms", med(lat) < 0.05,
    ))
    latency.notes.extend([
        "each write rewrites one existing file (new content) in its own directory; the clock is read "
        "after close(); the landing time is the `timestamp` of the daemon's `git_commit` log event, "
        "which is logged after the ref moved; baseline = the daemon's own `duration_ms` of the same "
        "commits, the part of the latency that is the commit step",
        f"p90 {ms(p90)}; each of the {got.verified} commits was checked to hold exactly the written "
        "file with the written content",
    ])
    ready_vs = f"{ms(got.probe_ready)} (observer)"
    startup.rows.extend([
        Row(f"{name} tree: process start → `daemon_ready`, first start after `committer init`",
            spread([got.first_ready]) + cpu_at_ready(got.first_cpu), ready_vs,
            f"{ratio(got.first_ready / got.probe_ready)} (daemon/observer)", "< 1.5 s", got.first_ready < 1.5),
        Row(f"{name} tree: process start → `daemon_ready`, later starts",
            spread(got.again) + cpu_at_ready(got.cpu), ready_vs,
            f"{ratio(med(got.again) / got.probe_ready)} (daemon/observer)", "< 1.5 s", med(got.again) < 1.5),
        Row(f"{name} tree: idle CPU over {idle:.0f} s (utime+stime)", f"{got.idle:.3f} % of a core",
            f"{got.probe_idle:.3f} % (observer)", "—", "< 0.2 %", got.idle < 0.2),
        Row(f"{name} tree: peak RSS (VmHWM) after idling and {len(lat)} commits", f"{got.peak_mb:.1f} MB",
            f"{got.probe_mb:.1f} MB (observer)", f"{ratio(got.peak_mb / got.probe_mb)} (daemon/observer)",
            "< 60 MB", got.peak_mb < 60.0),
    ])
    tick = 100 / procs.CLK_TCK / idle
    startup.notes.extend([
        "start-up = interpreter, imports, instance lock, repository config, an inotify watch on every "
        "directory and the start-up reconcile (`git status` against the index, then index resync); "
        "page cache warm; the observer probe is the same interpreter importing watchdog and scheduling "
        "one recursive inotify observer",
        f"the daemon's own `seconds` in `daemon_ready` (from `Daemon.run`, so without interpreter and "
        f"imports): first start {ms(got.first_inner)}, later starts {ms(med(got.again_inner))}",
        f"interpreter alone (`python -c pass`): {ms(med(got.interpreter))}; `{IMPORTS}`: "
        f"{ms(med(got.imports))} and {got.imports_mb:.1f} MB VmHWM (process start to exit, median of 3)",
        f"observer probe: schedule + start {ms(got.probe_schedule)}; later daemon starts' VmHWM right at "
        f"ready: {', '.join(f'{mb:.1f}' for mb in got.again_mb)} MB",
        f"idle CPU: {got.ticks} clock ticks in the window; one tick = {tick:.3f} % of a core over it",
    ])
    for which, found in (("first start", got.first_phases), ("later starts", got.phases)):
        if found:
            startup.notes.append(f"{which}, the daemon's phases (`daemon_ready`'s `<phase>_s`, medians): " + ", ".join(
                f"{phase} {ms(med(values))}" for phase, values in found.items()))
