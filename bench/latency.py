"""Section 3b: write → commit as a real deployment runs it (events outbox with a receiver, `--http`, a push
remote), with each batch's trace (`batch_trace`), against `git add -A && git commit` in the same run."""

from __future__ import annotations

import http.server
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gitruns
import procs
from report import Row, Section, med, ms, ratio, spread
from workload import Tree

from committer.git.objects import blob_id

DEBOUNCE_FLAG, DEBOUNCE = "200ms", 0.2
WRITE_GAP = 0.3
# The steps of a batch's trace after the debounce, in order (committer.commit.trace.STEPS).
STEPS = ("collected", "objects_written", "ref_updated", "state_written", "push_started", "push_done")
# Where the path from the batch to the ref spent CPU, and waited for a CPU another process held (Linux).
SCHED = (("cpu", "the daemon's main thread, CPU"), ("waited", "the daemon's main thread, waiting for a CPU"),
         ("fast_import_cpu", "fast-import, CPU"), ("fast_import_waited", "fast-import, waiting for a CPU"))


@dataclass
class Latency:
    latencies: list[float] = field(default_factory=list)  # write → ref, minus the debounce (s)
    steps: dict[str, list[float]] = field(
        default_factory=lambda: {s: [] for s in (*STEPS, "to_ref", *(k for k, _ in SCHED))})
    ahead: int = 0  # batches whose fast-import was started ahead
    # write → commit minus the debounce, minus the trace's batch closed → ref: the event reaching the loop,
    # the debounce's wake-up overshoot, and the `git_commit` line after the ref (s)
    outside: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)  # `git add -A && git commit` (s)
    load: str = ""


class _Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def receiver() -> http.server.ThreadingHTTPServer:
    """An event receiver on loopback that takes every event (the outbox drains)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def measure(tree: Tree, git_dir: Path, root: Path, env: dict[str, str], writes: int,
            live: list[procs.DaemonProcess | procs.ObserverProbe], tell: Callable[[str], None]) -> Latency:
    out = Latency(load=" ".join(Path("/proc/loadavg").read_text().split()[:3]))
    baseline_git, mirror = root / "latency-baseline.git", root / "latency-mirror.git"
    tell("baseline clone with a warm index")
    gitruns.clone_same_state(git_dir, baseline_git)
    gitruns.warm_index(baseline_git, tree.data)
    gitruns.clone_same_state(git_dir, mirror)  # the remote has the history: every push is one commit
    server = receiver()
    secret = root / "notify-secret"
    secret.write_text("bench-secret\n")
    extra = ("--http", str(procs.free_port()), "--log-level", "debug",
             "--notify-url", f"http://127.0.0.1:{server.server_address[1]}/events",
             "--notify-secret-file", str(secret))
    tell("daemon with a remote, --http and an events receiver")
    daemon = procs.DaemonProcess(tree.data, git_dir, {**env, "COMMITTER_PUSH_BACKOFF_MAX": "1s"},
                                 DEBOUNCE_FLAG, remote=f"file://{mirror}", extra=extra)
    live.append(daemon)
    try:
        daemon.wait_ready()
        time.sleep(2.0)
        tell(f"{writes} writes, each waited for until pushed; `git add -A && git commit` after each")
        start = len(daemon.log.records)
        for number, index in enumerate(tree.pick(writes + 1, offset=23)):
            rel = tree.rel(index)
            data = tree.content(index, tree.next_rev())
            with open(tree.data / rel, "wb") as handle:
                handle.write(data)
            written = time.time()
            at, commit = daemon.log.wait_for(procs.event("git_commit"), start, timeout=30.0)
            sha = str(commit["sha"])
            if gitruns.git(git_dir, "rev-parse", f"{sha}:{rel}") != blob_id(data):
                raise RuntimeError(f"commit {sha} does not hold the write of {rel}")
            at, trace = daemon.log.wait_for(lambda r, s=sha: r.get("event") == "batch_trace" and r.get("sha") == s,
                                            start, timeout=30.0)
            start = at + 1
            if number == 0:
                continue  # the first write warms up
            out.latencies.append(procs.epoch(commit["timestamp"]) - written - DEBOUNCE)
            for step in (*STEPS, "to_ref", *(k for k, _ in SCHED)):
                if f"{step}_ms" in trace:
                    out.steps[step].append(float(trace[f"{step}_ms"]) / 1000)
            out.ahead += bool(trace.get("fast_import_ahead"))
            if "to_ref_ms" in trace and "batch_closed_ms" in trace:
                path = (float(trace["to_ref_ms"]) - float(trace["batch_closed_ms"])) / 1000
                out.outside.append(out.latencies[-1] - path)
            time.sleep(WRITE_GAP)
            out.baseline.append(gitruns.add_all_commit(baseline_git, tree.data))
    finally:
        daemon.stop()
        server.shutdown()
    subprocess.run(["rm", "-rf", str(baseline_git), str(mirror)], check=False)
    return out


def rows(name: str, got: Latency, section: Section) -> None:
    lat, base = med(got.latencies), med(got.baseline)
    p90 = statistics.quantiles(got.latencies, n=10)[-1] if len(got.latencies) >= 2 else got.latencies[0]
    section.rows.append(Row(
        f"{name} tree, deployment (outbox + receiver, `--http`, push remote): write → commit visible, minus "
        "the debounce", spread(got.latencies), f"`git add -A && git commit` {ms(base)}",
        f"{ratio(base / lat)} cheaper", "≤ 15 ms", lat <= 0.015,
    ))
    for step in STEPS:
        if got.steps[step]:
            section.rows.append(Row(f"  trace step `{step}` (from the step before)", spread(got.steps[step]),
                                    "—", "—", "—", None))
    if got.outside:
        section.rows.append(Row("  outside the trace's batch closed → ref: the event reaching the loop, the "
                                "debounce's overshoot, the log line", spread(got.outside), "—", "—", "—", None))
    for key, what in SCHED:
        if got.steps[key]:
            section.rows.append(Row(f"  batch closed → ref: {what} (`{key}_ms`)", spread(got.steps[key]),
                                    "—", "—", "—", None))
    section.notes.append(
        f"deployment run: load average {got.load} at its start; p90 {ms(p90)}; fast-import started ahead in "
        f"{got.ahead} of {len(got.latencies)} batches; the commit visible = the "
        "`timestamp` of `git_commit`, logged right after the ref moved; trace steps are medians of each "
        "batch's `batch_trace` (debug), push steps against a `file://` mirror holding the history; the "
        "baseline ran on a clone with a warm index after each write's push, on the same tree"
    )
