"""Section 7: the poll observer on the bench's trees against watchdog's polling, and the daemon polling.

Per tree: one scan of the unchanged tree by committer's `PollScanner` (and by the same without its
inotify hints, every file statted, as on a local disk where inotify cannot start) and by watchdog's
`DirectorySnapshot` + `DirectorySnapshotDiff` (the work `PollingObserver` does every interval), each
in a child process of its own (`poll_bench.py --child`): CPU seconds of a scan (median of the later
scans), the child's VmHWM, and which of seven changes each one finds. On the largest tree, the real
daemon with `--observer poll`: its CPU over an idle window of whole poll intervals, its VmHWM, and
write → commit for a few writes at arbitrary moments of the interval.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import poll_bench
import procs
from report import Row, Section, med, ms, ratio, spread
from workload import Tree

DEBOUNCE = 0.2
MARGIN = 1.0  # the target: committed within poll_interval + debounce + 1 s
CPU_TARGET, RSS_TARGET = 2.0, 80.0  # % of a core at a 10 s interval; MB


@dataclass
class Live:
    interval: float
    window: float = 0.0
    cpu_pct: float = 0.0
    hwm_mb: float = 0.0
    ready_s: float = 0.0
    latencies: list[float] = field(default_factory=list)


def scans(root: Path, env: dict[str, str], count: int) -> dict[str, dict[str, Any]]:
    """The scanner and watchdog's snapshot diff on one tree, each in its own child process."""
    return {name: poll_bench.run_child(["--child", name, "--root", str(root), "--scans", str(count)], env)
            for name in ("scanner", "scanner-no-hints", "watchdog")}


def live(tree: Tree, git_dir: Path, env: dict[str, str], interval: float, window: float, writes: int,
         running: list[Any], tell: Callable[[str], None]) -> Live:
    """`committer run --observer poll` on the tree: idle CPU over whole intervals, VmHWM, write → commit."""
    got = Live(interval)
    daemon = procs.DaemonProcess(tree.data, git_dir, env, f"{int(DEBOUNCE * 1000)}ms", observer="poll",
                                 extra=("--poll-interval", f"{interval:g}s"))
    running.append(daemon)
    try:
        got.ready_s, _ = daemon.wait_ready()
        time.sleep(interval / 2)  # the window starts between two scans and holds whole intervals
        tell(f"poll daemon: idle CPU over {window:.0f} s")
        cpu0, start = procs.cpu_seconds(daemon.pid), time.monotonic()
        time.sleep(window)
        got.window = time.monotonic() - start
        got.cpu_pct = 100 * (procs.cpu_seconds(daemon.pid) - cpu0) / got.window
        index = len(daemon.log.records)
        for n in range(writes):
            time.sleep(interval * ((0.37 * n + 0.11) % 1))  # an arbitrary moment of the interval
            rel = tree.modify([tree.pick(writes, offset=7)[n]])[0]
            written = time.time()
            index, record = daemon.log.wait_for(procs.event("git_commit"), index, interval + 30)
            index += 1
            got.latencies.append(procs.epoch(record["timestamp"]) - written)
            tell(f"poll daemon: {rel} committed {got.latencies[-1]:.2f} s after the write")
        got.hwm_mb = procs.status_mb(daemon.pid, "VmHWM")
    finally:
        daemon.stop()
    return got


def _found(result: dict[str, Any]) -> str:
    missing = [c for c, ok in zip(poll_bench.CHECKS, result["checks"], strict=True) if not ok]
    return f"{sum(result['checks'])}/7" + (f" (misses: {', '.join(missing)})" if missing else "")


def rows(name: str, got: dict[str, dict[str, Any]], section: Section, interval: float = 10.0) -> None:
    ours, theirs = got["scanner"], got["watchdog"]
    cpu, ref = med(ours["scan_cpu"]), med(theirs["scan_cpu"])
    section.rows.append(Row(
        f"{name} tree: CPU of one poll scan of the unchanged tree (as % of a core at a {interval:g} s interval)",
        f"{spread(ours['scan_cpu'])} ({100 * cpu / interval:.2f} %)",
        f"watchdog snapshot + diff {ms(ref)} ({100 * ref / interval:.2f} %)",
        f"{ratio(ref / cpu)} cheaper" if cpu > 0 else "—", "—", None,
    ))
    plain = got.get("scanner-no-hints")
    if plain is not None:
        every = med(plain["scan_cpu"])
        section.rows.append(Row(
            f"{name} tree: the same scan with every file statted (no inotify hints: as before them, and as "
            "on a local disk whose hints cannot start)",
            f"{spread(plain['scan_cpu'])} ({100 * every / interval:.2f} %)", f"with hints {ms(cpu)}",
            f"{ratio(every / cpu)} dearer" if cpu > 0 else "—", "reference", None,
        ))
    section.rows.append(Row(
        f"{name} tree: peak RSS of a process that only polls (VmHWM); changes found of 7",
        f"{ours['hwm_kb'] / 1024:.1f} MB; {_found(ours)}",
        f"watchdog {theirs['hwm_kb'] / 1024:.1f} MB; {_found(theirs)}",
        f"{ratio(theirs['hwm_kb'] / ours['hwm_kb'])} less", "—", None,
    ))
    if not section.notes:
        section.notes.append(
            "one child process per observer and tree (`bench/poll_bench.py --child`); scan CPU is user + "
            "system of the child, median of the scans after the first; watchdog's `PollingObserver` does "
            "one snapshot and one diff per interval, so its scan is the same unit of work"
        )


def live_rows(name: str, got: Live, watchdog: dict[str, Any], section: Section) -> None:
    ref = 100 * med(watchdog["scan_cpu"]) / got.interval
    ten = got.interval == 10.0
    section.rows.append(Row(
        f"{name} tree: `committer run --observer poll --poll-interval {got.interval:g}s`, idle CPU "
        f"over {got.window:.0f} s",
        f"{got.cpu_pct:.2f} % of a core", f"watchdog snapshot + diff at the same interval {ref:.2f} %",
        f"{ratio(ref / got.cpu_pct)} cheaper" if got.cpu_pct > 0 else "—",
        f"< {CPU_TARGET:g} % at 10 s" if ten else "reference", got.cpu_pct < CPU_TARGET if ten else None,
    ))
    section.rows.append(Row(
        f"{name} tree: the polling daemon's peak RSS (VmHWM), after the window and the writes",
        f"{got.hwm_mb:.1f} MB", f"watchdog poll child {watchdog['hwm_kb'] / 1024:.1f} MB", "—",
        f"< {RSS_TARGET:g} MB" if ten else "reference", got.hwm_mb < RSS_TARGET if ten else None,
    ))
    bound = got.interval + DEBOUNCE + MARGIN
    worst = max(got.latencies)
    section.rows.append(Row(
        f"{name} tree: write → commit with polling (debounce {DEBOUNCE * 1000:.0f} ms; writes at arbitrary "
        "moments of the interval)",
        f"{spread(got.latencies)}", f"poll_interval + debounce = {ms(got.interval + DEBOUNCE)}",
        f"worst {ms(worst)}", f"≤ {ms(bound)} (interval + debounce + 1 s)", worst <= bound,
    ))
    section.notes.append(
        f"polling daemon: spawn → `daemon_ready` {ms(got.ready_s)} on the {name} tree (first scan included); "
        f"latencies {', '.join(f'{x:.2f} s' for x in got.latencies)}; median "
        f"{statistics.median(got.latencies):.2f} s"
    )
