"""Section 8: memory of a burst of 1,000,000 events (a large directory copied in), in child processes.

`events`: the daemon's watcher handler (`Watcher.on_any_event`, the watchdog callback) gets one
created and one modified event for each of N distinct paths (g###/d#####/f#######.md, 50 files a
directory, as a copy of a large tree reports them), and the main loop's side drains the queue into
the `Batcher` every 10,000 events, as the daemon does when woken. Reported: the child's VmHWM
against the same imports alone, and what is pending at the end (paths folded into directories).
Committing a change of that size is section 9 (bench/huge.py), on real trees.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from report import Row, Section, ratio

HERE = Path(__file__).resolve()
TARGET_MB = 200.0


def _rel(index: int) -> str:
    directory = index // 50
    return f"g{directory // 141:03d}/d{directory:05d}/f{index:07d}.md"


def _hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child_events(count: int, root: str) -> dict[str, Any]:
    from watchdog.events import FileCreatedEvent, FileModifiedEvent

    import committer.cli  # noqa: F401 - what the daemon process holds
    from committer.policy.filters import PathFilter
    from committer.watch.batcher import Batcher
    from committer.watch.inotify import EventHandler
    from committer.watch.watcher import Watcher

    base = _hwm_mb()
    watcher = Watcher(Path(root), PathFilter(Path(root)), notify=lambda: None, observer="poll")
    handler = EventHandler(watcher.root, watcher.pfilter, watcher.inbox)  # what the inotify observer calls
    batcher = Batcher(debounce=2.0, max_delay=30.0)
    started = time.perf_counter()
    most = 0
    for index in range(count):
        path = f"{root}/{_rel(index)}"
        handler.on_any_event(FileCreatedEvent(path))
        handler.on_any_event(FileModifiedEvent(path))
        if index % 10_000 == 9_999:
            paths, _ = watcher.drain()
            now = time.monotonic()
            for rel in paths:
                batcher.add(rel, now, time.time())
            most = max(most, len(batcher))
    paths, _ = watcher.drain()
    for rel in paths:
        batcher.add(rel, time.monotonic(), time.time())
    batch = batcher.take()
    assert batch is not None
    return {"base_mb": base, "hwm_mb": _hwm_mb(), "seconds": time.perf_counter() - started,
            "pending": len(batch.paths), "most_pending": max(most, len(batch.paths)),
            "depths": sorted({p.count("/") for p in batch.paths})}


def measure(count: int, env: dict[str, str], tmp: Path) -> dict[str, dict[str, Any]]:
    root = tmp / "burst-root"
    root.mkdir(exist_ok=True)
    got = {}
    for kind in ("events",):
        proc = subprocess.run([sys.executable, str(HERE), kind, str(count), str(root)], env=env,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"burst child {kind} failed: {proc.stderr[-2000:]}")
        got[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    return got


def rows(count: int, got: dict[str, dict[str, Any]], section: Section) -> None:
    events = got["events"]
    label = f"{count:,}"
    section.rows.append(Row(
        f"{label} distinct paths, 2 events each, through the watcher's handler into the batcher: peak RSS",
        f"{events['hwm_mb']:.1f} MB", f"the same imports alone {events['base_mb']:.1f} MB",
        f"+{events['hwm_mb'] - events['base_mb']:.1f} MB", f"< {TARGET_MB:g} MB", events["hwm_mb"] < TARGET_MB,
    ))
    section.rows.append(Row(
        f"{label} paths: candidates pending when the batch closes (coalesced by path, folded into directories)",
        f"{events['pending']:,} (depth {'/'.join(map(str, events['depths']))})",
        f"{2 * count:,} events", ratio(2 * count / max(1, events["pending"])), "bounded", True,
    ))
    section.notes.append(
        f"events child: {events['seconds']:.1f} s for {2 * count:,} events. No file is created or read "
        "(see bench/burst.py); what committing that many changed files costs in memory is section 9, "
        "measured on real trees"
    )


if __name__ == "__main__":
    mode, number = sys.argv[1], int(sys.argv[2])
    result = child_events(number, sys.argv[3])
    print(json.dumps(result), flush=True)
