"""Fault-injection machinery shared by the tests in this folder and by `soak.py`.

Real processes only: the daemon is `committer run` as a child process, its git children are
found under /proc, `kill -9` is a real SIGKILL, a hanging git is a wrapper script earlier on the
daemon's PATH, and the expected history is computed from what is on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import DaemonProcess, Layout, committer, wait_for

# Every process a fault test starts carries this variable (git children inherit it), so teardown
# can find and kill the ones a SIGKILLed daemon left behind (an orphaned push, a hung wrapper).
TAG_ENV = "COMMITTER_FAULT_TAG"
SEED_ENV = "COMMITTER_FAULT_SEED"
REAL_GIT = shutil.which("git") or "/usr/bin/git"
GIT_ENV = {"LC_ALL": "C", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}

Entry = tuple[str, str]  # (mode, blob id)


# -- waiting ---------------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `predicate` until truthy; AssertionError naming `what` after `timeout` seconds."""
    return wait_for(predicate, timeout, what, interval)


# -- processes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    """One process as /proc shows it."""

    pid: int
    ppid: int
    pgrp: int
    state: str
    argv: tuple[str, ...]

    def runs(self, word: str) -> bool:
        """Whether `word` is one of its arguments (a git subcommand such as `push`)."""
        return word in self.argv


def _read_proc(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode(errors="replace")
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = tuple(os.fsdecode(a) for a in fh.read().split(b"\0") if a)
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return Proc(pid, int(fields[1]), int(fields[2]), fields[0], argv)


def processes() -> list[Proc]:
    """Every process visible in /proc."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            proc = _read_proc(int(name))
            if proc is not None:
                found.append(proc)
    return found


def children(pid: int) -> list[Proc]:
    """Live (non-zombie) children of `pid`."""
    return [p for p in processes() if p.ppid == pid and p.state not in "ZX"]


def child_running(pid: int, *words: str) -> Proc | None:
    """A live child of `pid` that has one of `words` among its arguments."""
    for proc in children(pid):
        if any(proc.runs(w) for w in words):
            return proc
    return None


def alive(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    proc = _read_proc(pid)
    return proc is not None and proc.state not in "ZX"


def git_activity(pid: int) -> str:
    """What the daemon's git children are doing right now, e.g. `fast-import`, `push`, or `idle`."""
    names = []
    for proc in children(pid):
        name = os.path.basename(proc.argv[0]) if proc.argv else "?"
        if name.startswith("python"):
            name = "spawning git"  # forked, not yet exec'd: the child still shows the daemon's argv
        names.append(git_subcommand(proc.argv) or name)
    return "+".join(sorted(names)) or "idle"


def git_subcommand(argv: Iterable[str]) -> str | None:
    """The git subcommand of a git (or git wrapper) command line."""
    args = list(argv)
    if not args or not os.path.basename(args[0]).startswith(("git", "sh", "bash", "dash")):
        return None
    if os.path.basename(args[0]) in ("sh", "bash", "dash"):
        args = args[1:]  # the wrapper script: /bin/sh /path/git ...
    skip = False
    for arg in args[1:]:
        if skip:
            skip = False
        elif arg in ("-c", "-C"):
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def tagged(tag: str) -> list[int]:
    """Processes whose environment carries our tag (all a test started, orphans included)."""
    needle = f"{TAG_ENV}={tag}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
        except OSError:
            continue
        if needle in env:
            found.append(int(name))
    return found


def reap(tag: str, timeout: float = 10.0) -> list[int]:
    """SIGKILL every live process carrying `tag`, one by one by pid; returns the pids killed."""
    killed = []
    for pid in tagged(tag):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.02)
    return killed


def kill_group(proc: Proc) -> None:
    """SIGKILL the process group `proc` leads (a push runs in a session of its own); only `proc`
    itself when it leads no group, so the test's own group is never hit."""
    with contextlib.suppress(ProcessLookupError):
        if proc.pgrp == proc.pid and proc.pgrp != os.getpgrp():
            os.killpg(proc.pgrp, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)


def bytes_read(pid: int) -> int:
    """Bytes the process has read so far (/proc/<pid>/io rchar): how far a fast-import stream got."""
    try:
        with open(f"/proc/{pid}/io") as fh:
            for line in fh:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


# -- daemons ---------------------------------------------------------------------------------------


class Daemons:
    """Starts `committer run` processes that carry a tag, and kills everything tagged at the end."""

    def __init__(self, tag: str | None = None) -> None:
        self.tag = tag or uuid.uuid4().hex
        self.started: list[DaemonProcess] = []

    def start(self, layout: Layout, *extra: str, env: dict[str, str] | None = None,
              ready: bool = True) -> DaemonProcess:
        args = list(extra)
        if "--debounce" not in args:
            args += ["--debounce", "150ms"]
        full = {TAG_ENV: self.tag, "COMMITTER_MAX_DELETE": "1000000", **(env or {})}
        daemon = DaemonProcess(layout, args, full)
        self.started.append(daemon)
        if ready:
            daemon.wait_ready()
        return daemon

    def logs(self) -> list[Path]:
        return [d.log_path for d in self.started]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for d in self.started for e in d.events(name)]

    def close(self) -> None:
        for daemon in self.started:
            with contextlib.suppress(Exception):
                daemon.kill()
        reap(self.tag)


def sigkill(daemon: DaemonProcess) -> None:
    """kill -9 the daemon itself (not its children: an orphaned git goes on, as after a real crash)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(daemon.proc.pid, signal.SIGKILL)
    daemon.kill()  # reaps the process and closes the log


# -- a git that hangs or is slow ---------------------------------------------------------------------

_WRAPPER = r"""#!/bin/sh
# git for fault tests: hang or slow down chosen subcommands, otherwise run the real git.
#   COMMITTER_FAULT_GIT_HANG=fast-import,push   hang these subcommands (sleep 3600)
#   $COMMITTER_FAULT_GIT_CONTROL/hang-<sub>       hang <sub> while the file exists
#   $COMMITTER_FAULT_GIT_CONTROL/hang-once-<sub>  hang the next <sub> only (the file is removed)
#   $COMMITTER_FAULT_GIT_CONTROL/hang-child-<sub> hang in a child process that keeps git's stdout
#                                                 and stderr open (as a hung hook or filter does)
#   $COMMITTER_FAULT_GIT_CONTROL/delay-<sub>      sleep that many seconds (holding no pipe), then run <sub>
# Every subcommand is appended to $COMMITTER_FAULT_GIT_CONTROL/calls as "<sub> <pid>".
sub=
skip=
for a in "$@"; do
  if [ -n "$skip" ]; then skip=; continue; fi
  case "$a" in
    -c|-C) skip=1 ;;
    -*) ;;
    *) sub=$a; break ;;
  esac
done
ctl=${COMMITTER_FAULT_GIT_CONTROL:-}
if [ -n "$sub" ]; then
  [ -n "$ctl" ] && echo "$sub $$" >> "$ctl/calls"
  case ",${COMMITTER_FAULT_GIT_HANG:-}," in *",$sub,"*) exec sleep 3600 ;; esac
  if [ -n "$ctl" ]; then
    [ -e "$ctl/hang-$sub" ] && exec sleep 3600
    rm "$ctl/hang-once-$sub" 2>/dev/null && exec sleep 3600
    if [ -e "$ctl/hang-child-$sub" ]; then sleep 3600; exit 1; fi
    if [ -e "$ctl/delay-$sub" ]; then
      sleep "$(cat "$ctl/delay-$sub")" </dev/null >/dev/null 2>&1 &
      wait $!
    fi
  fi
fi
exec @REAL_GIT@ "$@"
"""


class GitWrapper:
    """A `git` script first on the daemon's PATH (only the daemon's: pass `env()` to it)."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "fault-bin"
        self.control = root / "fault-git"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.control.mkdir(parents=True, exist_ok=True)
        script = self.bin / "git"
        script.write_text(_WRAPPER.replace("@REAL_GIT@", REAL_GIT))
        script.chmod(0o755)

    def env(self) -> dict[str, str]:
        return {"PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
                "COMMITTER_FAULT_GIT_CONTROL": str(self.control)}

    def hang(self, sub: str, once: bool = False) -> None:
        """`sub` hangs itself (the wrapper becomes `sleep 3600`)."""
        (self.control / (f"hang-once-{sub}" if once else f"hang-{sub}")).touch()

    def taken(self, sub: str) -> bool:
        """The hang of `hang(sub, once=True)` has begun (that run removed its control file)."""
        return not (self.control / f"hang-once-{sub}").exists()

    def hang_in_child(self, sub: str) -> None:
        """`sub` waits for ever on a child process that holds its stdout and stderr open."""
        (self.control / f"hang-child-{sub}").touch()

    def delay(self, sub: str, seconds: float) -> None:
        (self.control / f"delay-{sub}").write_text(f"{seconds}\n")

    def clear(self) -> None:
        for path in self.control.iterdir():
            if path.name != "calls":
                path.unlink()

    def calls(self, sub: str | None = None) -> list[int]:
        """Pids of the wrapper runs so far (of subcommand `sub`)."""
        try:
            lines = (self.control / "calls").read_text().splitlines()
        except FileNotFoundError:
            return []
        return [int(line.split()[1]) for line in lines
                if len(line.split()) == 2 and (sub is None or line.split()[0] == sub)]


# -- expected and actual trees ---------------------------------------------------------------------


def blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def writer_ignored(rel: str) -> bool:
    """The ignored names the writer produces (built-in rules: editor swap and temporary files)."""
    return rel.rsplit("/", 1)[-1].endswith((".tmp", ".swp"))


def disk_tree(data: Path, ignored: Callable[[str], bool] = writer_ignored) -> dict[str, Entry]:
    """What HEAD must hold: every file and symlink under `data` with git's mode and blob id."""
    found: dict[str, Entry] = {}
    root = str(data)
    for directory, dirnames, filenames in os.walk(root):
        names = list(filenames) + [d for d in dirnames if os.path.islink(os.path.join(directory, d))]
        for name in names:
            full = os.path.join(directory, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if ignored(rel):
                continue
            try:
                st = os.lstat(full)
                if stat.S_ISLNK(st.st_mode):
                    found[rel] = ("120000", blob_id(os.fsencode(os.readlink(full))))
                elif stat.S_ISREG(st.st_mode):
                    mode = "100755" if st.st_mode & stat.S_IXUSR else "100644"
                    found[rel] = (mode, blob_id(Path(full).read_bytes()))
            except FileNotFoundError:
                continue
    return found


def log_events(path: Path) -> list[dict[str, Any]]:
    """The JSON events of a daemon log file."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                found.append(event)
    return found


def git_out(git_dir: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([REAL_GIT, f"--git-dir={git_dir}", *args], capture_output=True,
                          env={**os.environ, **GIT_ENV}, check=False, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc


def head_tree(git_dir: Path, rev: str = "HEAD") -> dict[str, Entry]:
    """Every entry of a commit's tree (empty before the first commit)."""
    proc = git_out(git_dir, "ls-tree", "-r", "-z", "--full-tree", rev)
    found: dict[str, Entry] = {}
    if proc.returncode != 0:
        return found
    for record in proc.stdout.split(b"\0"):
        if record:
            meta, _, path = record.partition(b"\t")
            mode, _kind, sha = meta.decode().split(" ")
            found[os.fsdecode(path)] = (mode, sha)
    return found


@dataclass
class TreeDiff:
    """How HEAD differs from the data directory."""

    missing: list[str] = field(default_factory=list)  # on disk, not in HEAD: lost
    wrong: list[str] = field(default_factory=list)  # in both, other content or mode: lost
    extra: list[str] = field(default_factory=list)  # in HEAD, gone from disk

    @property
    def lost(self) -> list[str]:
        return self.missing + self.wrong

    def __bool__(self) -> bool:
        return bool(self.missing or self.wrong or self.extra)

    def describe(self, limit: int = 10) -> str:
        parts = []
        for name in ("missing", "wrong", "extra"):
            paths = getattr(self, name)
            if paths:
                parts.append(f"{len(paths)} {name}: {', '.join(sorted(paths)[:limit])}")
        return "; ".join(parts) or "identical"


def compare(expected: dict[str, Entry], actual: dict[str, Entry]) -> TreeDiff:
    diff = TreeDiff()
    for path, entry in expected.items():
        if path not in actual:
            diff.missing.append(path)
        elif actual[path] != entry:
            diff.wrong.append(path)
    diff.extra = [p for p in actual if p not in expected]
    return diff


def ref_sha(git_dir: Path, ref: str = "refs/heads/main") -> str | None:
    proc = git_out(git_dir, "rev-parse", "-q", "--verify", f"{ref}^{{commit}}")
    return proc.stdout.decode().strip() or None


@dataclass(frozen=True)
class Fsck:
    ok: bool  # git fsck --full
    strict_ok: bool  # git fsck --full --strict
    output: str

    def __str__(self) -> str:
        if self.ok and self.strict_ok:
            return "clean (--full --strict)"
        return f"{'clean' if self.ok else 'FAILED'} (--full), {'clean' if self.strict_ok else 'FAILED'} " \
               f"(--strict): {self.output.strip()[:2000]}"


def _fsck_clean(proc: subprocess.CompletedProcess[bytes]) -> bool:
    text = (proc.stdout + proc.stderr).decode(errors="replace")
    bad = ("error", "missing", "broken", "fatal", "corrupt", "invalid")
    return proc.returncode == 0 and not any(line.lower().startswith(bad) for line in text.splitlines())


def fsck(git_dir: Path) -> Fsck:
    """`git fsck --full` and `--full --strict`; dangling objects (a killed import) are fine."""
    full = git_out(git_dir, "fsck", "--full", "--no-progress")
    strict = git_out(git_dir, "fsck", "--full", "--strict", "--no-progress")
    text = (full.stdout + full.stderr + strict.stderr).decode(errors="replace")
    return Fsck(_fsck_clean(full), _fsck_clean(strict), text)


def stale_locks(git_dir: Path) -> list[Path]:
    """Lock files of git (`*.lock`) anywhere in the git dir; our own flock file is not one."""
    own = git_dir / "committer" / "daemon.lock"
    return sorted(p for p in git_dir.rglob("*.lock") if p != own)


def nothing_pending(layout: Layout, remote_url: str) -> bool:
    """`committer status` says the remote has every commit (what it remembers having pushed)."""
    proc = committer("status", "--json", *layout.args(), "--remote", remote_url, timeout=30)
    try:
        status = json.loads(proc.stdout)
    except ValueError:
        return False
    return bool(status.get("pending_commits") == 0)


def crash_reports(git_dir: Path) -> list[Path]:
    return sorted(git_dir.glob("fast_import_crash_*"))


def settle(layout: Layout, timeout: float = 60.0) -> dict[str, Entry]:
    """Wait until HEAD's tree is exactly the data directory (which must not change meanwhile)."""
    expected = disk_tree(layout.data)

    def same() -> bool:
        return not compare(expected, head_tree(layout.git_dir))

    try:
        wait_until(same, timeout, "HEAD's tree to equal the data directory", interval=0.1)
    except AssertionError as exc:
        diff = compare(expected, head_tree(layout.git_dir))
        raise AssertionError(f"{exc}: {diff.describe()}") from None
    return expected


def bare_remote(path: Path) -> str:
    """A bare repository standing in for the remote; returns its file:// URL."""
    subprocess.run([REAL_GIT, "init", "-q", "--bare", "-b", "main", str(path)], check=True,
                   env={**os.environ, **GIT_ENV})
    return f"file://{path}"


# -- the writer ------------------------------------------------------------------------------------

_WORDS = ("alpha", "beta", "gamma", "delta", "note", "todo", "idea", "plan", "draft", "meeting", "river",
          "stone", "paper", "cloud", "garden", "lamp", "window", "orbit", "violet", "copper", "maple",
          "harbor", "ledger", "quartz")
_DIRS = ("", "notes", "notes/daily", "projects/alpha", "projects/beta/src", "inbox", "archive/2024")
_STEMS = ("note", "todo", "meeting notes", "café", "résumé", "-dash", "plan (v2)", "quote'd", "data")
_EXTS = ("md", "txt", "json", "csv", "sh")


class Writer(threading.Thread):
    """Creates, rewrites, renames and deletes files continuously in the data directory.

    The writer is the only thing touching the directory, so its model of which files exist is
    exact; the expected tree is still always computed from disk.
    """

    def __init__(self, data: Path, rng: random.Random, max_files: int = 400) -> None:
        super().__init__(name="fault-writer", daemon=True)
        self.data = data
        self.rng = rng
        self.max_files = max_files
        self.files: dict[str, str] = {}  # rel -> "file" | "link"
        self.burst_dirs: list[str] = []
        self.ops: Counter[str] = Counter()
        self.writes = 0  # file contents written (each file of a burst counts), ignored litter excluded
        self.error: BaseException | None = None
        self._n = 0
        self._stop_event = threading.Event()
        self._gate = threading.Event()
        self._gate.set()
        self._busy = threading.Lock()

    # control
    def stop(self) -> None:
        self._stop_event.set()
        self._gate.set()
        self.join(30)

    def pause(self) -> None:
        """Stop writing; returns once no operation is in progress."""
        self._gate.clear()
        with self._busy:
            pass

    def resume(self) -> None:
        self._gate.set()

    @property
    def total(self) -> int:
        return sum(self.ops.values())

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                if not self._gate.wait(0.1):
                    continue
                with self._busy:
                    if self._stop_event.is_set() or not self._gate.is_set():
                        continue
                    self.step()
                pause = self.rng.random()
                if pause < 0.03:
                    self._stop_event.wait(self.rng.uniform(0.1, 0.4))  # a quiet moment: batches close
                else:
                    self._stop_event.wait(self.rng.expovariate(1 / 0.004))
        except BaseException as exc:  # reported by the test; a writer bug must not pass silently
            self.error = exc

    # operations
    def step(self) -> None:
        rng = self.rng
        regular = [p for p, kind in self.files.items() if kind == "file"]
        crowded = len(self.files) > self.max_files
        choices = {
            "create": 1 if crowded else 30,
            "rewrite": 25 if regular else 0,
            "atomic_save": 8,
            "rename": 10 if self.files else 0,
            "delete": (40 if crowded else 10) if self.files else 0,
            "chmod": 5 if regular else 0,
            "symlink": 0 if crowded else 3,
            "burst": 0 if crowded else 3,
            "dir_rename": 2 if self.burst_dirs else 0,
            "rmtree": (10 if crowded else 2) if self.burst_dirs else 0,
            "litter": 3,
            "touch": 3 if regular else 0,
        }
        names, weights = zip(*[(k, w) for k, w in choices.items() if w], strict=True)
        op = rng.choices(names, weights)[0]
        getattr(self, f"op_{op}")(regular)
        self.ops[op] += 1

    def _full(self, rel: str) -> Path:
        return self.data / rel

    def _content(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.04:
            return b""
        if roll < 0.09:
            return b"\0" + rng.randbytes(rng.randint(1, 3000))  # binary
        words = [rng.choice(_WORDS) for _ in range(rng.randint(1, 300))]
        lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
        return ("\n".join(lines) + "\n").encode()

    def _new_path(self, directory: str | None = None) -> str:
        self._n += 1
        directory = self.rng.choice(_DIRS) if directory is None else directory
        name = f"{self.rng.choice(_STEMS)}-{self._n}.{self.rng.choice(_EXTS)}"
        return f"{directory}/{name}" if directory else name

    def _write(self, rel: str, content: bytes) -> None:
        full = self._full(rel)
        full.parent.mkdir(parents=True, exist_ok=True)
        with open(full, "wb") as fh:
            fh.write(content)
        if not writer_ignored(rel):
            self.writes += 1

    def op_create(self, _regular: list[str]) -> None:
        rel = self._new_path()
        self._write(rel, self._content())
        self.files[rel] = "file"

    def op_rewrite(self, regular: list[str]) -> None:
        rel = self.rng.choice(regular)
        roll = self.rng.random()
        if roll < 0.1:
            content = self._full(rel).read_bytes()  # same content: no commit
        elif roll < 0.4:
            with open(self._full(rel), "ab") as fh:
                fh.write(self._content())
            self.writes += 1
            return
        else:
            content = self._content()
        self._write(rel, content)

    def op_atomic_save(self, regular: list[str]) -> None:
        """An editor's save: write a temporary file (ignored), then rename it over the target."""
        rel = self.rng.choice(regular) if regular and self.rng.random() < 0.7 else self._new_path()
        directory, _, name = rel.rpartition("/")
        tmp = f"{directory}/.{name}.tmp" if directory else f".{name}.tmp"
        self._write(tmp, self._content())
        os.replace(self._full(tmp), self._full(rel))
        self.writes += 1
        self.files[rel] = "file"

    def op_rename(self, _regular: list[str]) -> None:
        src = self.rng.choice(list(self.files))
        dst = self._new_path()
        self._full(dst).parent.mkdir(parents=True, exist_ok=True)
        os.rename(self._full(src), self._full(dst))
        self.files[dst] = self.files.pop(src)

    def op_delete(self, _regular: list[str]) -> None:
        rel = self.rng.choice(list(self.files))
        os.unlink(self._full(rel))
        del self.files[rel]

    def op_chmod(self, regular: list[str]) -> None:
        full = self._full(self.rng.choice(regular))
        mode = full.stat().st_mode
        full.chmod(0o644 if mode & stat.S_IXUSR else 0o755)

    def op_symlink(self, _regular: list[str]) -> None:
        rel = self._new_path().rsplit(".", 1)[0] + ".lnk"
        full = self._full(rel)
        full.parent.mkdir(parents=True, exist_ok=True)
        if self.files and self.rng.random() < 0.8:
            target = os.path.relpath(self._full(self.rng.choice(list(self.files))), full.parent)
        else:
            target = f"nowhere/dangling-{self._n}.md"
        os.symlink(target, full)
        self.files[rel] = "link"

    def op_burst(self, _regular: list[str]) -> None:
        """Many files at once: a sync tool or an unpacked archive."""
        if self.burst_dirs and self.rng.random() < 0.3:
            directory = self.rng.choice(self.burst_dirs)
        else:
            self._n += 1
            directory = f"bursts/b{self._n}"
            self.burst_dirs.append(directory)
        for _ in range(self.rng.randint(20, 150)):
            self._n += 1
            rel = f"{directory}/item-{self._n}.md"
            self._write(rel, self._content())
            self.files[rel] = "file"

    def op_dir_rename(self, _regular: list[str]) -> None:
        old = self.rng.choice(self.burst_dirs)
        self._n += 1
        new = f"archive/moved-{self._n}" if self.rng.random() < 0.5 else f"bursts/b{self._n}"
        if not self._full(old).is_dir():
            self.burst_dirs.remove(old)
            return
        self._full(new).parent.mkdir(parents=True, exist_ok=True)
        os.rename(self._full(old), self._full(new))
        self.burst_dirs[self.burst_dirs.index(old)] = new
        for rel in [p for p in self.files if p.startswith(old + "/")]:
            self.files[new + rel[len(old) :]] = self.files.pop(rel)

    def op_rmtree(self, _regular: list[str]) -> None:
        directory = self.rng.choice(self.burst_dirs)
        self.burst_dirs.remove(directory)
        shutil.rmtree(self._full(directory), ignore_errors=True)
        for rel in [p for p in self.files if p.startswith(directory + "/")]:
            del self.files[rel]

    def op_litter(self, _regular: list[str]) -> None:
        """Files the built-in rules keep out: they must never reach the tree."""
        self._n += 1
        directory = self.rng.choice(_DIRS)
        name = f".draft-{self._n}.md.swp" if self.rng.random() < 0.5 else f"download-{self._n}.tmp"
        self._write(f"{directory}/{name}" if directory else name, self._content())

    def op_touch(self, regular: list[str]) -> None:
        os.utime(self._full(self.rng.choice(regular)))


# -- the randomized kill run -----------------------------------------------------------------------


@dataclass
class ChaosConfig:
    seed: int
    kills: int = 4
    duration: float = 20.0  # how long the writer writes (at least until the last kill)
    max_files: int = 400
    quiesce_timeout: float = 60.0
    checkpoint_every: int = 0  # pause the writer and check HEAD == disk every N kills (0: only at the end)


@dataclass
class ChaosResult:
    seed: int
    kills: list[str] = field(default_factory=list)  # what the daemon was doing at each kill
    operations: int = 0
    file_writes: int = 0
    op_counts: dict[str, int] = field(default_factory=dict)
    files_on_disk: int = 0
    lost: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    checkpoints: int = 0
    commits: int = 0
    fsck_local: Fsck | None = None
    fsck_remote: Fsck | None = None
    remote_caught_up: bool = False
    stop_code: int | None = None
    stop_seconds: float = 0.0
    stale_locks: list[str] = field(default_factory=list)
    crash_reports: int = 0
    commit_failures: int = 0
    quiescence_seconds: float = 0.0
    duration: float = 0.0
    problems: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)  # reported, not a failure: no data is at stake
    logs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (not self.lost and not self.extra and not self.problems and self.remote_caught_up
                and self.stop_code == 0 and not self.stale_locks
                and self.fsck_local is not None and self.fsck_local.ok and self.fsck_local.strict_ok
                and self.fsck_remote is not None and self.fsck_remote.ok)

    def summary(self) -> str:
        moments = Counter(self.kills)
        lines = [
            f"seed:               {self.seed}  (replay: {SEED_ENV}={self.seed} or --seed {self.seed})",
            f"kills survived:     {len(self.kills)}  ({', '.join(f'{k} {v}' for k, v in moments.most_common())})",
            f"files written:      {self.file_writes} file writes in {self.operations} operations "
            f"({', '.join(f'{k} {v}' for k, v in sorted(self.op_counts.items()))})",
            f"files on disk:      {self.files_on_disk} at the end; {self.commits} commits; "
            f"{self.checkpoints} checkpoint(s) passed",
            f"files lost:         {len(self.lost)}" + (f"  {sorted(self.lost)[:10]}" if self.lost else ""),
            f"files extra:        {len(self.extra)}" + (f"  {sorted(self.extra)[:10]}" if self.extra else ""),
            f"fsck:               local {self.fsck_local}; remote {self.fsck_remote}",
            f"remote caught up:   {self.remote_caught_up}",
            f"quiescence:         {self.quiescence_seconds:.1f}s after the writer stopped",
            f"final stop:         exit {self.stop_code} in {self.stop_seconds:.2f}s (SIGTERM)",
            f"stale locks:        {self.stale_locks or 'none'}",
            f"commit_failed:      {self.commit_failures} (retried); fast_import_crash_* files: "
            f"{self.crash_reports}",
            f"duration:           {self.duration:.1f}s",
            f"result:             {'OK' if self.ok else 'FAILED'}",
        ]
        lines.insert(-2, f"logged exceptions:  {len(self.tracebacks)}")
        lines += [f"exception:          {t}" for t in self.tracebacks[:5]]
        lines += [f"problem:            {p}" for p in self.problems]
        if not self.ok:
            lines += [f"daemon log:         {p}" for p in self.logs]
        return "\n".join(lines)


def seed_from_env(default: int | None = None) -> int:
    text = os.environ.get(SEED_ENV, "").strip()
    if text:
        return int(text)
    return default if default is not None else random.SystemRandom().randrange(2**32)


def run_chaos(cfg: ChaosConfig, root: Path, say: Callable[[str], None] = print) -> ChaosResult:
    """Write continuously while the daemon is SIGKILLed `cfg.kills` times; then check nothing was lost."""
    return _Chaos(cfg, root, say).run()


class _Chaos:
    def __init__(self, cfg: ChaosConfig, root: Path, say: Callable[[str], None]) -> None:
        self.cfg, self.say = cfg, say
        self.result = ChaosResult(cfg.seed)
        data = root / "data"
        data.mkdir(parents=True)
        self.layout = Layout(root, data, root / "git" / "knowledge.git")
        self.remote = root / "remote.git"
        self.url = bare_remote(self.remote)
        (data / "README.md").write_text("this directory is versioned by committer\n")  # never empty
        self.rng = random.Random(f"kills-{cfg.seed}")  # the kill schedule; the writer has its own
        self.writer = Writer(data, random.Random(f"writer-{cfg.seed}"), cfg.max_files)
        self.daemons = Daemons()
        self.env = {"COMMITTER_PUSH_INTERVAL": "300ms", "COMMITTER_PUSH_BACKOFF_MAX": "2s",
                    "COMMITTER_SHUTDOWN_TIMEOUT": "10s"}
        self.started = time.monotonic()
        self.spawned_at = 0.0

    def run(self) -> ChaosResult:
        self.writer.start()
        try:
            self._kill_loop()
            self._final_checks()
        except Exception as exc:  # a daemon that died on its own, a writer error: reported, not raised
            self.result.problems.append(f"run aborted: {type(exc).__name__}: {exc}")
        finally:
            if self.writer.is_alive():
                self.writer.stop()
            self.daemons.close()
            self.result.logs = [str(p) for p in self.daemons.logs()]
            self.result.duration = time.monotonic() - self.started
        return self.result

    def spawn(self) -> DaemonProcess:
        debounce = self.rng.choice(["100ms", "150ms", "200ms", "300ms"])
        self.spawned_at = time.monotonic()
        return self.daemons.start(self.layout, "--remote", self.url, "--debounce", debounce,
                                  "--max-delay", "1s", env=self.env, ready=False)

    def settle(self, what: str) -> float:
        """Pause the writer and wait until HEAD's tree is the data directory; returns the time taken."""
        self.writer.pause()
        t0 = time.monotonic()
        expected = disk_tree(self.layout.data)
        git_dir, timeout = self.layout.git_dir, self.cfg.quiesce_timeout
        try:
            wait_until(lambda: not compare(expected, head_tree(git_dir)), timeout,
                       f"HEAD == data directory ({what})", interval=0.2)
        except AssertionError:
            diff = compare(expected, head_tree(git_dir))
            self.result.lost, self.result.extra = diff.lost, diff.extra
            self.result.problems.append(f"{what}: HEAD != data directory after {timeout}s: {diff.describe()}")
        return time.monotonic() - t0

    def _moment(self, daemon: DaemonProcess, aim: float, style: str) -> None:
        """Wait for the moment of a kill: during start-up, at a random time, or with a git child in flight."""
        rng = self.rng
        if style == "start-up":
            # spawned just now without waiting: kill it while it starts (interpreter, lock, repair) or,
            # half the time, once it has logged daemon_start, in the reconcile of the backlog
            if rng.random() < 0.5:
                time.sleep(max(0.0, self.spawned_at + rng.uniform(0.05, 0.5) - time.monotonic()))
            else:
                with contextlib.suppress(AssertionError):
                    wait_until(lambda: daemon.events("daemon_start"), 10, "daemon_start", interval=0.003)
                time.sleep(rng.uniform(0, 0.03))
            return
        daemon.wait_ready()
        time.sleep(max(0.0, aim - time.monotonic()))
        if style in ("fast-import", "push"):
            pid = daemon.proc.pid
            with contextlib.suppress(AssertionError):  # none within 3 s: the kill lands on whatever runs
                wait_until(lambda: child_running(pid, style), 3.0, f"a {style} child", interval=0.002)
                if rng.random() < 0.5:
                    time.sleep(rng.uniform(0, 0.05))

    def _kill_loop(self) -> None:
        cfg, result, writer, rng = self.cfg, self.result, self.writer, self.rng
        daemon = self.spawn()
        daemon.wait_ready()
        t0 = time.monotonic()
        self.end_at = t0 + cfg.duration
        slot = cfg.duration / cfg.kills  # kill k lands somewhere in the k-th slot of the run
        aims = [t0 + slot * (k + rng.uniform(0.3, 1.0)) for k in range(cfg.kills)]
        # 20 % during start-up, 25 % aimed at a commit, 15 % at a push, 40 % at a random moment
        styles = rng.choices(["start-up", "fast-import", "push", "random"], [20, 25, 15, 40], k=cfg.kills)
        styles[0] = "random" if styles[0] == "start-up" else styles[0]
        for k in range(cfg.kills):
            self._moment(daemon, aims[k], styles[k])
            if daemon.proc.poll() is not None:
                raise AssertionError(f"the daemon exited by itself with {daemon.proc.returncode} "
                                     f"before kill {k + 1}: see {daemon.log_path}")
            activity = git_activity(daemon.proc.pid)
            ready = bool(daemon.events("daemon_ready"))
            label = activity if ready else "start-up" + (f" ({activity})" if activity != "idle" else "")
            sigkill(daemon)
            result.kills.append(label)
            self.say(f"kill {k + 1}/{cfg.kills} at {time.monotonic() - self.started:5.1f}s during {label}; "
                     f"{writer.total} operations so far")
            if writer.error is not None:
                raise writer.error
            checkpoint = bool(cfg.checkpoint_every and (k + 1) % cfg.checkpoint_every == 0
                              and k + 1 < cfg.kills)
            if k + 1 < cfg.kills and styles[k + 1] == "start-up" and not checkpoint:
                # stay down while the writes go on, then start just before the next kill's moment:
                # the restart has a backlog to reconcile when it is killed
                time.sleep(max(0.0, aims[k + 1] - rng.uniform(0.3, 0.8) - time.monotonic()))
            elif rng.random() < 0.3:
                time.sleep(rng.uniform(0.05, 0.6))  # down for a moment while writes go on
            daemon = self.spawn()
            if checkpoint:
                daemon.wait_ready()
                problems = len(result.problems)
                self.settle(f"checkpoint after kill {k + 1}")
                result.checkpoints += len(result.problems) == problems
                writer.resume()
                if k + 1 < cfg.kills and styles[k + 1] == "start-up":
                    styles[k + 1] = "random"
        daemon.wait_ready()
        self.daemon = daemon

    def _final_checks(self) -> None:
        result, writer, layout, remote = self.result, self.writer, self.layout, self.remote
        time.sleep(max(0.0, self.end_at - time.monotonic()))  # the writer keeps going to the end
        writer.stop()
        if writer.error is not None:
            raise writer.error
        result.operations, result.op_counts = writer.total, dict(writer.ops)
        result.file_writes = writer.writes
        result.quiescence_seconds = self.settle("end")
        result.files_on_disk = len(disk_tree(layout.data))
        try:
            wait_until(lambda: ref_sha(remote) == ref_sha(layout.git_dir), 30, "the remote to catch up",
                       interval=0.1)
            result.remote_caught_up = True
        except AssertionError:
            result.problems.append(f"remote at {ref_sha(remote)}, local at {ref_sha(layout.git_dir)}")
        t0 = time.monotonic()
        try:
            result.stop_code = self.daemon.stop(timeout=30)
        except subprocess.TimeoutExpired:
            result.problems.append("the daemon did not stop within 30s of SIGTERM")
        result.stop_seconds = time.monotonic() - t0
        after_stop = compare(disk_tree(layout.data), head_tree(layout.git_dir))
        if after_stop:
            result.problems.append(f"after the final stop: {after_stop.describe()}")
        result.commits = int(git_out(layout.git_dir, "rev-list", "--count", "HEAD").stdout.strip() or 0)
        result.fsck_local = fsck(layout.git_dir)
        result.fsck_remote = fsck(remote)
        result.stale_locks = [str(p.relative_to(layout.git_dir)) for p in stale_locks(layout.git_dir)]
        result.crash_reports = len(crash_reports(layout.git_dir))
        result.commit_failures = len(self.daemons.events("commit_failed"))
        for daemon_log in self.daemons.logs():
            for event in log_events(daemon_log):
                if "exception" in event or "Traceback" in str(event.get("error", "")):
                    result.tracebacks.append(f"{event.get('event')}: {str(event.get('exception'))[-300:]}")
