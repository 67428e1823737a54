"""Section 6: `committer run` pushing to a file:// mirror: commit-to-remote latency, and an outage.

Issue 3's "Speed": time from a commit landing to the remote having it, minus the push interval
(target under 300 ms median on a file:// remote), and 100 commits made during an outage go out in
one push when it ends. Measured on a small tree of its own (this is about pushing, not tree size),
against a plain `git push` from the same repository state to a file:// clone, in the same run.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gitruns
import procs
from report import Row, Section, med, ms, ratio, spread
from watching import DEBOUNCE_FLAG
from workload import Tree

from committer.core.settings import load_settings
from committer.git.objects import blob_id
from committer.git.runner import git_argv, git_env

FILES = 1000
BACKOFF_MAX = "1s"  # COMMITTER_PUSH_BACKOFF_MAX for the run, so the outage's retries come quickly
TARGET = 0.3
PUSH_GAP = 0.5  # after the mirror has a commit, before the next write: every push carries one commit
OUTAGE_SETTLE = 1.0  # after the mirror is moved away, and after the last outage commit
BASELINE_REPEATS = 5  # plain `git push` of one commit, after one untimed warm-up
WAIT = 30.0  # deadline for any one log event we wait for


@dataclass
class Pushing:
    """What the run measured, in seconds unless said otherwise."""

    interval: float = 0.0
    backoff_max: float = 0.0
    first_push: float = 0.0
    latencies: list[float] = field(default_factory=list)
    push_steps: list[float] = field(default_factory=list)
    verified: int = 0
    commit_steps: list[float] = field(default_factory=list)
    outage: int = 0
    outage_commits: int = 0
    outage_steps: list[float] = field(default_factory=list)
    outage_span: float = 0.0
    failures: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    recovery: float = 0.0
    recovery_pushes: int = 0
    recovery_commits: int = 0
    recovery_push: float = 0.0
    late_failures: int = 0
    mirror_count: int = 0
    baseline_one: list[float] = field(default_factory=list)
    baseline_many: float = 0.0
    idle: float = 0.0
    wakes: float = 0.0  # per second, every thread
    busiest: float = 0.0  # per second, the thread that woke most
    threads: int = 0


def push_ok(sha: str) -> Callable[[procs.Record], bool]:
    return lambda r: r.get("event") == "git_push" and r.get("result") == "ok" and r.get("new") == sha


def is_push(result: str) -> Callable[[procs.Record], bool]:
    return lambda r: r.get("event") == "git_push" and r.get("result") == result


def mirror_head(mirror: Path, ref: str) -> str:
    return gitruns.git(mirror, "rev-parse", "--verify", "-q", ref)


def write(tree: Tree, index: int) -> tuple[str, str]:
    """New content for one file; its path and blob id."""
    rel = tree.rel(index)
    data = tree.content(index, tree.next_rev())
    with open(tree.data / rel, "wb") as handle:
        handle.write(data)
    return rel, blob_id(data)


def plain_push(src: Path, mirror: Path, ref: str) -> float:
    """`git push -q file://mirror ref:ref` as a process, start to exit."""
    argv = git_argv(src, ["push", "--quiet", f"file://{mirror}", f"{ref}:{ref}"])
    started = time.perf_counter()
    proc = subprocess.run(argv, env=git_env(), capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"baseline git push failed: {proc.stderr.decode(errors='replace')}")
    return elapsed


def measure(
    base: Path, env: dict[str, str], writes: int, outage: int, idle: float,
    live: list[procs.DaemonProcess | procs.ObserverProbe], tell: Callable[[str], None],
) -> Pushing:
    """Build the tree, init, run the daemon against a file:// mirror, then the plain-push baselines."""
    out = Pushing(outage=outage)
    root = base / "push"
    tree = Tree(root / "data", FILES)
    tell(f"building {FILES} files; committer init; an empty bare mirror")
    tree.build()
    os.sync()
    git_dir, mirror, away = root / "committer.git", root / "mirror.git", root / "mirror-away.git"
    procs.warm_bytecode(env)
    subprocess.run(
        [sys.executable, "-m", "committer", "init", "--data-dir", str(tree.data), "--git-dir", str(git_dir),
         "--log-format", "json"],
        env=env, check=True, capture_output=True,
    )
    subprocess.run(["git", "init", "--quiet", "--bare", str(mirror)], env=git_env(), check=True)
    run_env = {**env, "COMMITTER_PUSH_BACKOFF_MAX": BACKOFF_MAX}
    flags = {"data_dir": str(tree.data), "git_dir": str(git_dir)}
    settings = load_settings(env=run_env, flags=flags)
    out.interval, out.backoff_max = settings.push_interval, settings.push_backoff_max
    ref = f"refs/heads/{settings.branch}"

    daemon = procs.DaemonProcess(tree.data, git_dir, run_env, DEBOUNCE_FLAG, remote=f"file://{mirror}",
                                 extra=("--http", f"127.0.0.1:{procs.free_port()}"))
    live.append(daemon)
    daemon.wait_ready()
    head = gitruns.git(git_dir, "rev-parse", ref)
    _, first = daemon.log.wait_for(push_ok(head), 0, WAIT)
    out.first_push = float(first["duration_ms"]) / 1000

    tell(f"{writes} writes, waiting for each commit and for the mirror to have it")
    log = daemon.log
    at = len(log.records)
    for index in tree.pick(writes, offset=13):
        rel, blob = write(tree, index)
        at, commit = log.wait_for(procs.event("git_commit"), at, WAIT)
        sha = str(commit["sha"])
        at, push = log.wait_for(push_ok(sha), at + 1, WAIT)
        out.latencies.append(procs.epoch(push["timestamp"]) - procs.epoch(commit["timestamp"]))
        out.push_steps.append(float(push["duration_ms"]) / 1000)
        out.commit_steps.append(float(commit["duration_ms"]) / 1000)
        if (mirror_head(mirror, ref) != sha or int(push["commits"]) != 1 or int(commit["files"]) != 1
                or gitruns.git(mirror, "rev-parse", f"{sha}:{rel}") != blob):
            raise RuntimeError(f"mirror does not hold exactly commit {sha} of {rel} after its git_push")
        out.verified += 1
        at += 1
        time.sleep(PUSH_GAP)

    tell(f"outage: mirror moved away, {outage} commits, then moved back")
    before = mirror_head(mirror, ref)
    os.rename(mirror, away)
    time.sleep(OUTAGE_SETTLE)
    start = at = len(log.records)
    began = time.monotonic()
    last = before
    for index in tree.pick(outage, offset=29):
        write(tree, index)
        at, commit = log.wait_for(procs.event("git_commit"), at, WAIT)
        if int(commit["files"]) != 1:
            raise RuntimeError(f"outage commit {commit['sha']} holds {commit['files']} files, not 1")
        last = str(commit["sha"])
        out.outage_steps.append(float(commit["duration_ms"]) / 1000)
        out.outage_commits += 1
        at += 1
    out.outage_span = time.monotonic() - began
    time.sleep(OUTAGE_SETTLE)
    log.wait_for(is_push("failed"), start, WAIT)  # at least one failure was logged
    if gitruns.git(git_dir, "rev-list", "--count", f"{before}..{last}") != str(outage):
        raise RuntimeError(f"the daemon did not make {outage} commits during the outage")
    back = len(log.records)
    moved_back = time.time()
    os.rename(away, mirror)
    end, landed = log.wait_for(push_ok(last), back, out.interval + out.backoff_max + WAIT)
    out.recovery = procs.epoch(landed["timestamp"]) - moved_back
    out.recovery_commits = int(landed["commits"])
    out.recovery_push = float(landed["duration_ms"]) / 1000
    with log.cond:
        during, after = log.records[start:back], log.records[back : end + 1]
    fails = [r for r in during if is_push("failed")(r)]
    out.failures, out.kinds = len(fails), Counter(str(r.get("kind")) for r in fails)
    out.recovery_pushes = sum(1 for r in after if is_push("ok")(r))
    out.late_failures = sum(1 for r in after if is_push("failed")(r))
    if mirror_head(mirror, ref) != last:
        raise RuntimeError("the mirror does not have the last outage commit after its git_push")
    out.mirror_count = int(gitruns.git(mirror, "rev-list", "--count", f"{before}..{last}"))
    tell(f"idle wake-ups over {idle:.0f} s (every thread: loop, push, pull, HTTP, observer)")
    time.sleep(OUTAGE_SETTLE)
    first, began = procs.wakeups(daemon.pid), time.monotonic()
    time.sleep(idle)
    last_counts, span = procs.wakeups(daemon.pid), time.monotonic() - began
    per_thread = [(n - first.get(tid, 0)) / span for tid, n in last_counts.items()]
    out.idle, out.threads = span, len(per_thread)
    out.wakes, out.busiest = sum(per_thread), max(per_thread)
    daemon.stop()

    tell("baseline: plain `git push` of 1 and of many commits from a clone of the same repository")
    src, plain = root / "src.git", root / "plain-mirror.git"
    gitruns.clone_same_state(git_dir, src)
    subprocess.run(["git", "clone", "--quiet", "--bare", str(src), str(plain)], env=git_env(), check=True)
    floor = gitruns.Floor(src, ref)
    for n, index in enumerate(tree.pick(BASELINE_REPEATS + 1, offset=41)):
        floor.commit(tree.data, tree.modify([index]))
        elapsed = plain_push(src, plain, ref)
        if mirror_head(plain, ref) != floor.head:
            raise RuntimeError("the baseline mirror does not have the pushed commit")
        if n:
            out.baseline_one.append(elapsed)
    was = floor.head
    for index in tree.pick(outage, offset=53):
        floor.commit(tree.data, tree.modify([index]))
    out.baseline_many = plain_push(src, plain, ref)
    if gitruns.git(plain, "rev-list", "--count", f"{was}..{ref}") != str(outage):
        raise RuntimeError(f"the baseline mirror did not get the {outage} commits")
    return out


def rows(got: Pushing, section: Section) -> None:
    """Fill section 6."""
    lat = got.latencies
    p90 = statistics.quantiles(lat, n=10)[-1] if len(lat) >= 2 else lat[0]
    one = med(got.baseline_one)
    name = f"{FILES // 1000}k tree, file:// remote, push_interval {got.interval:g} s"
    section.rows.extend([
        Row(f"{name}: commit landed (`git_commit`) → remote has it (`git_push` ok), minus the push "
            "interval (the commit wakes the push loop, so no interval is waited: this is the whole "
            "commit → remote time)",
            spread(lat), f"{ms(one)} (plain `git push` of 1 commit)",
            f"{ratio(med(lat) / one)} (daemon/plain)", f"< {TARGET * 1000:.0f} ms", med(lat) < TARGET),
        Row(f"{name}: the same, p90", ms(p90), f"{ms(max(got.baseline_one))} (plain push, max)",
            f"{ratio(p90 / one)} (daemon p90/plain)", "—", None),
        Row(f"outage: {got.outage} commits made with the mirror moved away → `git_push` ok events "
            "once it is back",
            f"{got.recovery_pushes} push(es), `commits` {got.recovery_commits}", "—", "—",
            f"1 push of {got.outage}",
            got.recovery_pushes == 1 and got.recovery_commits == got.outage == got.mirror_count),
        Row(f"outage: mirror moved back → mirror has all {got.outage} commits (backoff max "
            f"{got.backoff_max:g} s, push interval {got.interval:g} s)",
            spread([got.recovery]), "—", "—", "—", None),
        Row("outage: the push that carried them (the daemon's `duration_ms`)", spread([got.recovery_push]),
            f"{ms(got.baseline_many)} (plain `git push` of {got.outage} commits)",
            f"{ratio(got.recovery_push / got.baseline_many)} (daemon/plain)", "—", None),
        Row(f"idle after the outage, `--http` on, {got.threads} threads: wake-ups per second over "
            f"{got.idle:.0f} s (context switches of every thread)",
            f"{got.wakes:.2f} /s", "—", f"busiest thread {got.busiest:.2f} /s", "≤ 1 /s", got.wakes <= 1.0),
    ])
    kinds = ", ".join(f"{kind} ×{n}" for kind, n in got.kinds.most_common()) or "none"
    section.notes.extend([
        f"`committer run --debounce {DEBOUNCE_FLAG} --remote file://…/mirror.git` on a {FILES}-file tree, "
        f"COMMITTER_PUSH_BACKOFF_MAX={BACKOFF_MAX}, push_interval left at its default; the mirror starts "
        f"empty and gets the first commit in the daemon's first push ({ms(got.first_push)})",
        f"latency: {len(lat)} single-file writes, each waited for until the mirror had it, then "
        f"{PUSH_GAP:g} s apart; from the `timestamp` of the commit's `git_commit` event (logged after the "
        "ref moved) to that of the `git_push` ok event whose `new` is that commit (logged after git push "
        "exited); each time `git rev-parse` on the mirror was checked to give that commit, holding the "
        f"written blob, in a push of 1 commit ({got.verified} of {len(lat)} checked); the daemon's own "
        f"`duration_ms` of those pushes: {ms(med(got.push_steps))} median, of the commits "
        f"{ms(med(got.commit_steps))}",
        "baseline: `git push -q file://… <branch>:<branch>` as a process from a bare clone of the same "
        f"repository (same objects and config) to a bare clone of that, one new fast-import commit of "
        f"one file each time, median of {len(got.baseline_one)} after a warm-up; the daemon's push adds "
        "`--porcelain`, the tags refspec, reading what is pending before and recording it after",
        f"outage: the mirror directory renamed away, then {got.outage} writes, each waited for until its "
        f"`git_commit` (one file each): {got.outage_commits} commits in {got.outage_span:.1f} s, commit "
        f"step {ms(med(got.outage_steps))} median (before the outage {ms(med(got.commit_steps))}), so "
        f"committing went on; {got.failures} `git_push` failures logged meanwhile ({kinds})",
        "recovery: from the rename back to the `git_push` ok event carrying the last outage commit; "
        f"the mirror then had all {got.mirror_count} commits "
        f"(`rev-list --count`); {got.late_failures} attempt(s) failed after the move back. A failure of "
        "a permanent kind (a missing file:// repository reads as `not_found`) is re-checked after "
        "push_backoff_max at the loop's next wake, which with no new commits is the push interval; a "
        "transient one is retried by tenacity within push_backoff_max",
    ])
