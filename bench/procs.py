"""Processes under measurement: `committer run`, a bare watchdog observer, and /proc readings."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
PROBE = Path(__file__).with_name("watch_probe.py")
Record = dict[str, Any]


def child_env(pycache: Path) -> dict[str, str]:
    """No COMMITTER_* from our caller; byte-code cached (in our temp dir) as an installed package has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMITTER_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def warm_bytecode(env: dict[str, str]) -> None:
    """Import everything the daemon and the probe import once, so no measured start compiles."""
    code = "import committer.cli, committer.watch.watcher, committer.sync.pusher, watchdog.observers.inotify"
    subprocess.run([sys.executable, "-c", code], env=env, check=False, capture_output=True)


def epoch(stamp: str) -> float:
    """Seconds since the epoch from structlog's ISO UTC timestamp."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wakeups(pid: int) -> dict[str, int]:
    """Context switches (voluntary + involuntary) of each thread of a process, by thread id: a thread
    sleeping in select() or a wait switches once per wake-up."""
    counts = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            lines = (task / "status").read_text().splitlines()
        except OSError:
            continue  # a thread that ended meanwhile
        fields = dict(line.split(":", 1) for line in lines if ":" in line)
        counts[task.name] = int(fields["voluntary_ctxt_switches"]) + int(fields["nonvoluntary_ctxt_switches"])
    return counts


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status_mb(pid: int, key: str) -> float:
    """A memory line of /proc/<pid>/status (VmHWM, VmRSS) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


class LogTail(threading.Thread):
    """Reads a daemon's JSON log lines as they come; waits on them with deadlines."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.records: list[Record] = []
        self.other: list[str] = []
        self.closed = False
        self.cond = threading.Condition()

    def run(self) -> None:
        for raw in self.stream:
            line = raw.decode(errors="replace").strip()
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            with self.cond:
                if isinstance(record, dict):
                    self.records.append(record)
                elif line:
                    self.other.append(line)
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait_for(self, match: Callable[[Record], bool], start: int, timeout: float) -> tuple[int, Record]:
        """The first record from index `start` on that matches; raises after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            index = start
            while True:
                while index < len(self.records):
                    if match(self.records[index]):
                        return index, self.records[index]
                    index += 1
                if self.closed:
                    raise RuntimeError(f"daemon exited; last lines: {self.tail()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching log event within {timeout}s; last: {self.tail()}")
                self.cond.wait(remaining)

    def tail(self) -> list[Any]:
        return [*self.records[-3:], *self.other[-3:]]


def event(name: str) -> Callable[[Record], bool]:
    return lambda record: record.get("event") == name


class DaemonProcess:
    """`committer run` on a tree with inotify and JSON logs, from spawn to a clean SIGTERM stop."""

    def __init__(
        self, data: Path, git_dir: Path, env: dict[str, str], debounce: str, remote: str | None = None,
        observer: str = "inotify", extra: tuple[str, ...] = (),
    ) -> None:
        argv = [
            sys.executable, "-m", "committer", "run",
            "--data-dir", str(data), "--git-dir", str(git_dir),
            "--debounce", debounce, "--observer", observer, "--log-format", "json", *extra,
        ]
        if remote:
            argv += ["--remote", remote]
        self.observer = observer
        self.spawned = time.time()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
        )
        assert self.proc.stderr is not None
        self.log = LogTail(self.proc.stderr)
        self.log.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 180.0) -> tuple[float, float]:
        """(spawn to `daemon_ready` by the log's timestamp, the daemon's own `seconds` field)."""
        _, start = self.log.wait_for(event("daemon_start"), 0, timeout)
        if start.get("observer") != self.observer:
            raise RuntimeError(f"daemon runs observer {start.get('observer')!r}, not {self.observer}")
        _, ready = self.log.wait_for(event("daemon_ready"), 0, timeout)
        return epoch(ready["timestamp"]) - self.spawned, float(ready["seconds"])

    def stop(self, timeout: float = 180.0) -> int:
        """SIGTERM, then wait for the exit (the daemon commits what is pending and reconciles)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"daemon did not stop within {timeout}s after SIGTERM") from None
        self.log.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class ObserverProbe:
    """A bare watchdog inotify observer process on the same tree."""

    def __init__(self, data: Path, env: dict[str, str]) -> None:
        self.spawned = time.time()
        self.proc = subprocess.Popen(
            [sys.executable, str(PROBE), str(data)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self) -> tuple[float, float]:
        """(spawn to ready, the observer's own schedule + start time)."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("watchdog observer probe exited before it was ready")
        info = json.loads(line)
        return float(info["ready"]) - self.spawned, float(info["schedule_s"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
