"""The memory and tasks of a first push, for the systemd units' MemoryMax= and TasksMax= (systemd/README.md).

    python -m tests.deploy.measure_memory [--files 20000] [--keep DIR]

Makes a tree of small Markdown files (1-3 KB, 200 folders), an empty bare remote, and runs
`committer run` on them with the history pages on loopback, as a unit would: the first reconcile
commits the whole tree and the first push sends it. The RSS of the daemon and of every process it
starts (git) is sampled every 20 ms until the push is done, then the daemon is stopped with SIGTERM.
Prints the daemon's peak RSS (its VmHWM), the peak of the whole process tree and the most tasks
(threads) it had at once, which is what systemd's MemoryMax= and TasksMax= count.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_tree(data: Path, files: int) -> int:
    rng = random.Random(1)
    size = 0
    for i in range(files):
        folder = data / f"d{i % 200:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        text = rng.randbytes(rng.randint(512, 1536)).hex()
        (folder / f"f{i:06d}.md").write_text(text)
        size += len(text)
    return size


def children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(child) for child in handle.read().split()]
    except OSError:
        pass
    return found


def status(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status") as handle:
            return dict(line.split(":", 1) for line in handle if ":" in line)
    except OSError:
        return {}


def kilobytes(value: str | None) -> int:
    return int(value.split()[0]) * 1024 if value else 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    top = args.keep or Path(tempfile.mkdtemp(prefix="committer-memory-"))
    data, git_dir, remote = top / "data", top / "git" / "knowledge.git", top / "remote.git"
    size = make_tree(data, args.files)
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(remote)], check=True)
    log = top / "daemon.log"
    command = [sys.executable, "-m", "committer", "run", "--data-dir", str(data), "--git-dir", str(git_dir),
               "--remote", f"file://{remote}", "--http", f"127.0.0.1:{free_port()}", "--log-format", "json"]
    with log.open("w") as out:
        daemon = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    peak = hwm = tasks = 0
    deadline = time.monotonic() + 600
    try:
        while daemon.poll() is None and time.monotonic() < deadline:
            total = threads = 0
            stack = [daemon.pid]
            while stack:
                pid = stack.pop()
                fields = status(pid)
                total += kilobytes(fields.get("VmRSS"))
                threads += int(fields.get("Threads", "0") or 0)
                if pid == daemon.pid:
                    hwm = max(hwm, kilobytes(fields.get("VmHWM")))
                stack += children(pid)
            peak, tasks = max(peak, total), max(tasks, threads)
            if '"event": "git_push"' in log.read_text():
                break
            time.sleep(0.02)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
    pushed = '"event": "git_push"' in log.read_text()
    outcome = "done" if pushed else f"NOT done (see {log})"
    print(f"{args.files} files, {size / 1e6:.0f} MB, first push {outcome}")
    print(f"daemon peak RSS {hwm / 1e6:.0f} MB; process tree peak RSS {peak / 1e6:.0f} MB; tasks at most {tasks}")
    if not args.keep and pushed:
        subprocess.run(["rm", "-rf", str(top)], check=False)
    return 0 if pushed else 1


if __name__ == "__main__":
    raise SystemExit(main())
