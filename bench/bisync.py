"""committer beside rclone bisync: a local folder <-> `rclone bisync` <-> the data directory, the daemon
committing, pushing and pulling, a second clone writing to the remote.

    python bench/bisync.py                    # 40 rounds, bisync and `committer pull` in turn, then settle
    python bench/bisync.py --mode interval    # bisync on its own timer, the daemon pulling on --pull-interval
    python bench/bisync.py --rounds 100 --trials 3

Every round, writers edit notes on all three sides (each side its own line, sometimes the same note from two
sides at once); then bisync runs, and (`--mode after-bisync`, the recommended set-up) `committer pull`
right after it. Once the writers stop, rounds go on until one changes nothing. Reported: rounds to settle,
commits per edit, conflicts by kind, and what must be zero: versions lost (written somewhere, in no
commit), commits undoing another (a note back to an earlier content), empty commits, notes that left their
path. tests/sync/test_bisync_loop.py runs a short fixed scenario of the same rig.

Needs rclone (Debian: `apt-get install rclone`, scripts/system-deps.sh) and git; the remote is a bare
repository (file://) unless `--remote` names one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

LINES = 10
SIDES = {"local": 1, "data": 4, "remote": 7}  # the line each side edits: different sides merge cleanly


def blob_id(data: bytes) -> str:
    """The id git gives a blob with this content."""
    digest = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
    digest.update(data)
    return digest.hexdigest()


def files(root: Path) -> dict[str, str]:
    """Path -> blob id of every file below root."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[path.relative_to(root).as_posix()] = blob_id(path.read_bytes())
    return found


def wait(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Rig:
    """The three sides and the daemon, in `root`; `remote` is the URL the daemon and the clone use."""

    def __init__(self, root: Path, remote: str, *, env: dict[str, str] | None = None,
                 clone_env: dict[str, str] | None = None, pull_interval: str = "", debounce: str = "200ms") -> None:
        self.root = root
        self.remote = remote
        self.local, self.data, self.work = root / "local", root / "data", root / "bisync"
        self.git_dir = root / "git" / "knowledge.git"
        self.clone = root / "clone"
        self.env = {**os.environ, "COMMITTER_DATA_DIR": str(self.data), "COMMITTER_GIT_DIR": str(self.git_dir),
                    "COMMITTER_REMOTE": remote, "COMMITTER_LOG_FORMAT": "json",
                    "XDG_RUNTIME_DIR": str(root / "run"), "XDG_CONFIG_HOME": str(root / "config"), **(env or {})}
        self.clone_env = {**os.environ, "HOME": str(root), **(clone_env or {})}
        self.pull_interval = pull_interval
        self.debounce = debounce
        self.versions: list[tuple[str, str, str, float]] = []  # (side, path, blob id, when) of every version
        self.bisync_spans: list[tuple[float, float]] = []  # (start, end) of each bisync run
        self.edits = 0
        self.bisync_runs = 0
        self.rclone_conflicts = 0
        self.bisync_failures: list[str] = []
        self.daemon: subprocess.Popen[bytes] | None = None
        self.log = root / "daemon.log"
        self._count = 0
        self._lock = threading.Lock()  # the bisync timer thread and the writers (interval mode)

    # -- set-up and tear-down -----------------------------------------------------------------------

    def start(self, notes: list[str], fillers: int = 10) -> None:
        """The data directory with the notes, committed and pushed; the local folder bisynced; the clone."""
        for n in range(fillers):  # bisync refuses a run where every file changed
            self._write(self.data / f"filler/f{n}.md", f"filler {n}\n")
        for note in notes:
            self._write(self.data / note, "".join(f"{note} line {i}\n" for i in range(LINES)))
        self.committer("init")
        self.local.mkdir(parents=True, exist_ok=True)
        self.bisync("--resync")
        extra = ["--pull-interval", self.pull_interval] if self.pull_interval else []
        with self.log.open("wb") as out:
            self.daemon = subprocess.Popen(
                [sys.executable, "-m", "committer", "run", "--debounce", self.debounce, "--push-interval", "200ms",
                 *extra], stdout=out, stderr=subprocess.STDOUT, env=self.env)
        wait(lambda: "daemon_ready" in self.log.read_text(errors="replace"), 30, "the daemon")
        wait(lambda: self.remote_head() == self.head(), 20, "the first push")
        self._git_clone("clone", "-q", self.remote, str(self.clone), cwd=self.root)

    def stop(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()

    # -- the three writers ------------------------------------------------------------------------

    def edit(self, side: str, note: str, newer: float = 0.0) -> None:
        """One user edit of `note` on `side` (local, data, remote): that side's line gets a new text; none
        where the note is not at its path on that side."""
        if side == "remote":
            self._git_clone("pull", "-q", "--ff-only", "origin", "main")
            path = self.clone / note
        else:
            path = (self.local if side == "local" else self.data) / note
        if not path.exists():
            return  # not at its path on this side (rclone renamed it on a conflict): nobody opens it there
        lines = path.read_text().splitlines(keepends=True)
        self._count += 1
        lines[SIDES[side]] = f"{note} line {SIDES[side]}: {side} edit {self._count}\n"
        text = "".join(lines)
        self._write(path, text, newer)
        written = blob_id(text.encode())
        if side == "remote":
            self._git_clone("add", "-A")
            self._git_clone("commit", "-qm", f"edit {note} elsewhere")
            for _attempt in range(10):  # the daemon pushed meanwhile: as a person would, rebase and push again
                if self._git_clone("push", "-q", "origin", "HEAD:main", check=False):
                    break
                self._git_clone("pull", "-q", "--rebase", "origin", "main")
            else:
                raise AssertionError("the clone could not push")
            written = blob_id(path.read_bytes())  # as pushed (rebased on what the daemon pushed meanwhile)
        with self._lock, (self.root / "versions.jsonl").open("a") as log:
            self.versions.append((side, note, written, time.time()))
            log.write(json.dumps(self.versions[-1]) + "\n")
            self.edits += 1

    @staticmethod
    def _write(path: Path, text: str, newer: float = 0.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if newer:
            when = time.time() + newer
            os.utime(path, (when, when))

    # -- what runs between the writers --------------------------------------------------------------

    def bisync(self, *extra: str) -> subprocess.CompletedProcess[str]:
        started = time.time()
        run = subprocess.run(["rclone", "bisync", str(self.local), str(self.data), "--workdir", str(self.work), "-v",
                              *extra], capture_output=True, text=True, timeout=120, check=False,
                             env={**os.environ, "RCLONE_CONFIG": "/dev/null"})
        with self._lock, (self.root / "bisync.log").open("a") as log:
            log.write(f"== {time.strftime('%H:%M:%S')} exit {run.returncode}\n{run.stderr}")
            self.bisync_spans.append((started, time.time()))
            self.bisync_runs += 1
            self.rclone_conflicts += run.stderr.count("Moved (server-side) to:") // 2
            if run.returncode != 0:
                self.bisync_failures.append(run.stderr[-2000:])
        return run

    def pull(self) -> None:
        """`committer pull`, asked of the running daemon as the command asks it (without a process start)."""
        from committer.core.settings import load_settings
        from committer.ops import requests
        from committer.ops.kinds import PullNow

        requests.run(load_settings(env=self.env), PullNow())

    def round(self, pull: bool = True) -> None:
        """One bisync run, `committer pull` right after it, and the daemon's commits and pushes done."""
        self.bisync()
        if pull:
            self.pull()
        self.quiet()

    def quiet(self, timeout: float = 30.0) -> None:
        """Until the data directory is committed and the remote has the commit."""
        wait(lambda: files(self.data) == self.tree() and self.remote_head() == self.head(), timeout,
             "the daemon to commit and push")

    def snapshot(self) -> tuple[Any, ...]:
        return files(self.local), files(self.data), self.head(), self.remote_head()

    def settle(self, most: int = 8) -> int:
        """Rounds after the writers stopped until one changes nothing (and both folders agree)."""
        moved: list[str] = []
        for changed in range(most):
            before = self.snapshot()
            self.round()
            after = self.snapshot()
            if after == before and before[0] == before[1]:
                return changed
            moved.append(_moved(before, after))
        raise AssertionError(f"not settled after {most} rounds: a loop; what moved: {moved}")

    # -- git ----------------------------------------------------------------------------------------

    def committer(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "committer", *args], capture_output=True, text=True,
                              env=self.env, timeout=120, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"committer {' '.join(args)}: {proc.stderr}")
        return proc

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "--git-dir", str(self.git_dir), *args], capture_output=True, text=True,
                              check=True).stdout

    def _git_clone(self, *args: str, cwd: Path | None = None, check: bool = True) -> bool:
        base = ["git", "-c", "user.name=Other", "-c", "user.email=other@example.com"]
        proc = subprocess.run([*base, *args], cwd=cwd or self.clone, capture_output=True, text=True,
                              env=self.clone_env, check=False)
        assert proc.returncode == 0 or not check, proc.stdout + proc.stderr
        return proc.returncode == 0

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def remote_head(self) -> str | None:
        proc = subprocess.run(["git", "ls-remote", self.remote, "refs/heads/main"], capture_output=True, text=True,
                              env=self.clone_env, check=False)
        return proc.stdout.split()[0] if proc.stdout.strip() else None

    def tree(self, rev: str = "HEAD") -> dict[str, str]:
        out = self.git("ls-tree", "-r", "-z", rev)
        found = {}
        for item in filter(None, out.split("\0")):
            meta, path = item.split("\t", 1)
            found[path] = meta.split()[2]
        return found

    # -- what must hold -------------------------------------------------------------------------------

    def lost(self) -> list[tuple[str, str, str, float]]:
        """Versions written somewhere that are in no commit, apart from those of `unseen`."""
        return [v for v in self._missing() if self._seen(v)]

    def unseen(self) -> list[tuple[str, str, str, float]]:
        """Versions in no commit that bisync never carried out of the local folder: replaced there before a
        run started, or written while a run was under way (rclone 1.60 lists the folder again at the end
        and takes the edit for one it has carried)."""
        return [v for v in self._missing() if not self._seen(v)]

    def _missing(self) -> list[tuple[str, str, str, float]]:
        known = {line.split()[0] for line in self.git("rev-list", "--objects", "--all").splitlines()}
        return [v for v in self.versions if v[2] not in known]

    def _seen(self, version: tuple[str, str, str, float]) -> bool:
        side, note, _blob, when = version
        if side != "local":
            return True
        if any(start - 0.05 <= when <= end for start, end in self.bisync_spans):
            return False
        later = [v[3] for v in self.versions if v[:2] == (side, note) and v[3] > when]
        until = min(later, default=float("inf"))
        return any(when < start < until for start, _end in self.bisync_spans)

    def commits(self) -> list[str]:
        return self.git("rev-list", "--first-parent", "--reverse", "HEAD").split()

    def undone(self) -> list[tuple[str, str]]:
        """(commit, path) where a note went back to a content it had before (A -> B -> A)."""
        seen: dict[str, list[str | None]] = {}
        found = []
        for sha in self.commits():
            tree = self.tree(sha)
            for path in set(tree) | set(seen):
                history = seen.setdefault(path, [])
                blob = tree.get(path)
                if history and history[-1] == blob:
                    continue
                if blob is not None and len(history) >= 2 and blob in history[:-1]:
                    found.append((sha, path))
                history.append(blob)
        return found

    def empty(self) -> list[str]:
        """Commits that change nothing against their first parent."""
        shas = self.commits()[1:]
        return [s for s in shas if not self.git("diff-tree", "-r", "--name-only", f"{s}^", s).strip()]

    def left(self) -> list[tuple[str, str]]:
        """(commit, note) where a note that was there is gone (nobody here deletes notes)."""
        before: set[str] = set()
        found = []
        for sha in self.commits():
            now = set(self.tree(sha))
            found += [(sha, p) for p in sorted(before - now)]
            before = now
        return found

    def conflicts(self) -> Counter[str]:
        """The daemon's git_conflict lines, by kind, and rclone's own conflicts."""
        kinds: Counter[str] = Counter()
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "git_conflict":
                kinds[str(event.get("kind"))] += 1
        kinds["rclone renamed"] = self.rclone_conflicts
        return kinds

    def commit_count(self) -> int:
        return int(self.git("rev-list", "--count", "HEAD"))


def _moved(before: tuple[Any, ...], after: tuple[Any, ...]) -> str:
    """What one round changed: files of either folder, the head, the remote's head."""
    said = []
    for label, one, two in (("local", before[0], after[0]), ("data", before[1], after[1])):
        said += [f"{label}:{p}" for p in sorted(set(one) | set(two)) if one.get(p) != two.get(p)]
    said += [f"local!=data:{p}" for p in sorted(set(after[0]) ^ set(after[1]))]
    if before[2] != after[2] or before[3] != after[3]:
        said.append(f"head {before[2][:7]}->{after[2][:7]} remote {str(before[3])[:7]}->{str(after[3])[:7]}")
    return ", ".join(said) or "nothing"


# -- the soak ---------------------------------------------------------------------------------------


def soak(rig: Rig, notes: list[str], rounds: int, mode: str, seed: int, period: float) -> dict[str, Any]:
    """`rounds` rounds of random edits on all sides; then rounds until quiet. Returns the figures."""
    rng = random.Random(seed)
    first = rig.commit_count()
    stop = threading.Event()
    timer = None
    if mode == "interval":  # bisync on its own timer, as a systemd timer or cron would run it
        def every() -> None:
            while not stop.wait(period):
                rig.bisync()
        timer = threading.Thread(target=every, name="bisync-timer")
        timer.start()
    started = time.monotonic()
    try:
        for _ in range(rounds):
            for side in rng.sample(sorted(SIDES), rng.randint(1, 3)):
                rig.edit(side, rng.choice(notes))
            if mode == "after-bisync":
                rig.round()
            else:
                time.sleep(period)
    finally:
        stop.set()
        if timer is not None:
            timer.join()
    writing = time.monotonic() - started
    if mode == "interval":
        rig.quiet(60)
    started = time.monotonic()
    settled = rig.settle()
    return {
        "mode": mode, "rounds": rounds, "edits": rig.edits, "bisync runs": rig.bisync_runs,
        "bisync failures": len(rig.bisync_failures), "commits": rig.commit_count() - first,
        "commits per edit": round((rig.commit_count() - first) / max(rig.edits, 1), 2),
        "rounds to settle": settled, "seconds to settle": round(time.monotonic() - started, 1),
        "seconds writing": round(writing, 1), "conflicts": dict(rig.conflicts()), "lost": len(rig.lost()),
        "lost versions": rig.lost()[:5], "unseen by bisync": len(rig.unseen()),
        "undone": len(rig.undone()), "empty commits": len(rig.empty()), "left their path": len(rig.left()),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--notes", type=int, default=6)
    parser.add_argument("--mode", choices=("after-bisync", "interval"), default="after-bisync")
    parser.add_argument("--period", type=float, default=3.0, help="interval mode: seconds between bisync runs")
    parser.add_argument("--tmp", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the folders (printed) for a look")
    args = parser.parse_args(argv)
    if shutil.which("rclone") is None:
        print("rclone is not installed (scripts/system-deps.sh)", file=sys.stderr)
        return 2
    results = []
    for trial in range(args.trials):
        folder = tempfile.mkdtemp(prefix="committer-bench-bisync-", dir=args.tmp)
        print(f"trial {trial}: {folder}", file=sys.stderr)
        root = Path(folder)
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(root / "remote.git")], check=True)
        interval = f"{args.period}s" if args.mode == "interval" else ""
        rig = Rig(root, f"file://{root / 'remote.git'}", pull_interval=interval)
        notes = [f"notes/n{i}.md" for i in range(args.notes)]
        try:
            rig.start(notes)
            result = soak(rig, notes, args.rounds, args.mode, seed=trial, period=args.period)
        finally:
            rig.stop()
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
        print(json.dumps(result), flush=True)
        results.append(result)
    return 0 if all(r["lost"] == r["undone"] == r["empty commits"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
