"""Poll observers side by side: CPU per scan, memory, and whether each one sees what changed.

Standalone (issue 8, point 1). For each tree size it builds N files of 2 KB in N/50 directories
under --tmp, then runs every candidate in a child process of its own that does nothing but scan:

- `PollScanner` (committer/watch/scanner.py) as the daemon would run it on that filesystem (on a
  local disk: directory mtimes trusted, listings of unchanged directories skipped, and the files of
  folders with no inotify event left unstatted but for a sixth of them in turn: watch/hints.py);
- `PollScanner` on a local disk without its inotify hints (every file statted at every scan);
- `PollScanner` with every directory listed at every scan, as on FUSE and SMB mounts;
- a plain `os.scandir` walk into a dict {path: (mtime_ns, size, ino, mode)}, compared dict to dict;
- `git status` with the stat cache (an index of the tree in a git dir outside it, built without
  writing objects) and the untracked cache, and without the untracked cache (which trusts directory
  mtimes, as git checks with `update-index --test-untracked-cache`);
- watchdog's `PollingObserver` work per interval: `DirectorySnapshot` + `DirectorySnapshotDiff`;
- `find -printf` of every entry's stat fields, for reference: the C floor of a stat walk (it
  compares nothing and keeps nothing).

Per candidate: CPU seconds (user + system, the child's own and its subprocesses') of the first
scan and the median of --scans later scans of the unchanged tree, as % of one core at a 10 s
poll interval; VmHWM of the child; the memory its state holds after the first scan (tracemalloc,
a separate child); and seven changes made between two scans (add, size change, same size with a
new mtime, same size AND same mtime, delete, rename of a file, rename of a directory), each found
or not. git's first scan includes building its index, which reads and hashes every file. With
--live S (default 60, on the largest tree), a child imports `committer.cli` as the daemon does and
runs a `PollThread` at a 10 s interval for S seconds, once as auto-detected and once with every
directory listed: its average CPU, its VmHWM, and how long after a write its path was handed over.

Usage: python bench/poll_bench.py [--sizes 10k,100k] [--scans 7] [--live 60] [--tmp /tmp] [--only a,b]
       python bench/poll_bench.py --tree /mnt/bucket-copy   # an existing tree, e.g. on a FUSE mount
About 5 minutes with the defaults (two 60 s live runs); --live 0 skips them.
The report (a markdown table) goes to stdout; progress to stderr. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FILES_PER_DIR = 50
FILE_SIZE = 2048
INTERVAL = 10.0
CANDIDATES = {
    "scanner": "PollScanner (as the daemon runs it: dir mtimes trusted only on local disks)",
    "scanner-no-hints": "PollScanner, dir mtimes trusted, no inotify hints (every file statted)",
    "scanner-list-all": "PollScanner, every directory listed (as on FUSE)",
    "dict-walk": "plain os.scandir walk into a dict",
    "git-status": "git status (stat cache + untracked cache)",
    "git-status-no-uc": "git status, no untracked cache (as it must where dir mtimes lie)",
    "watchdog": "watchdog DirectorySnapshot + DirectorySnapshotDiff",
    "find": "find -printf (C floor, compares nothing)",
}
CHECKS = ["add", "size", "same size, new mtime", "same size + mtime", "delete", "rename file", "rename dir"]


def tell(message: str) -> None:
    print(f"[poll_bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cpu_now() -> float:
    """CPU seconds of this process and of its finished subprocesses."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def status_kb(pid: int | str, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def proc_cpu(pid: int) -> float:
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- the tree -----------------------------------------------------------------------------------


def build_tree(root: Path, count: int) -> None:
    """`count` files of 2 KB, 50 per directory, directories grouped under about sqrt(dirs) folders."""
    dirs = max(1, count // FILES_PER_DIR)
    groups = max(1, round(dirs**0.5))
    filler = b"".join(b"%05d lorem ipsum dolor sit amet, consectetur adipiscing\n" % i for i in range(40))
    for index in range(count):
        directory = index // FILES_PER_DIR
        folder = root / f"g{directory % groups:03d}" / f"d{directory:05d}"
        if index % FILES_PER_DIR == 0:
            folder.mkdir(parents=True, exist_ok=True)
        head = b"# file %d\n" % index
        (folder / f"f{index:06d}.md").write_bytes((head + filler)[:FILE_SIZE])


# ---- candidates, run inside the child -----------------------------------------------------------


TIME = "/usr/bin/time"  # GNU time: the peak RSS of a git or find process alone


class Candidate:
    """prime() once, then scan() -> the relative paths it found changed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tool_kb = 0  # peak RSS of the largest subprocess, when GNU time can tell

    def timed(self, argv: list[str]) -> list[str]:
        """argv under GNU time, which records its peak RSS (ru_maxrss of a Python child would count
        the Python process it was forked from)."""
        if not os.access(TIME, os.X_OK):
            return argv
        handle, self._time_out = tempfile.mkstemp(prefix="poll-bench-rss-")
        os.close(handle)
        return [TIME, "-f", "%M", "-o", self._time_out, *argv]

    def note_rss(self) -> None:
        path = getattr(self, "_time_out", None)
        if path and os.path.exists(path):
            with open(path) as f:
                text = f.read().split()
            os.unlink(path)
            if text and text[-1].isdigit():
                self.tool_kb = max(self.tool_kb, int(text[-1]))

    def prime(self) -> None:
        raise NotImplementedError

    def scan(self) -> set[str]:
        raise NotImplementedError


class Scanner(Candidate):
    def __init__(self, root: Path, trust: bool | None, hints: bool = True) -> None:
        super().__init__(root)
        from committer.policy.filters import PathFilter
        from committer.watch.scanner import PollScanner

        self.scanner = PollScanner(root, PathFilter(root), trust_dir_mtime=trust, hints=hints)

    def prime(self) -> None:
        self.scanner.prime()

    def scan(self) -> set[str]:
        return set(self.scanner.scan())

    def note(self) -> str:
        st = self.scanner.stats
        return (f"listed {st.listed}/{st.dirs} dirs, files of {st.skipped} not statted, hashed {st.hashed}; "
                f"dir mtimes trusted: {self.scanner.dir_mtimes_trusted}")


class DictWalk(Candidate):
    """What a first attempt looks like: full paths, a dict of stat tuples, compared as dicts."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.state: dict[str, tuple[int, int, int, int]] = {}

    def walk(self) -> dict[str, tuple[int, int, int, int]]:
        out: dict[str, tuple[int, int, int, int]] = {}
        cut = len(str(self.root)) + 1
        stack = [str(self.root)]
        while stack:
            try:
                with os.scandir(stack.pop()) as it:
                    for e in it:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(e.path)
                        else:
                            st = e.stat(follow_symlinks=False)
                            out[e.path[cut:]] = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode)
            except OSError:
                continue
        return out

    def prime(self) -> None:
        self.state = self.walk()

    def scan(self) -> set[str]:
        new, old = self.walk(), self.state
        self.state = new
        changed = {p for p, v in new.items() if old.get(p) != v}
        changed.update(p for p in old if p not in new)
        return changed


class GitStatus(Candidate):
    """An index of the tree in a git dir outside it; each scan is one `git status`."""

    def __init__(self, root: Path, untracked_cache: bool) -> None:
        super().__init__(root)
        self.untracked_cache = untracked_cache
        self.git_dir = Path(tempfile.mkdtemp(prefix="poll-bench-git-", dir=root.parent))
        self.env = {**os.environ, "GIT_DIR": str(self.git_dir), "GIT_WORK_TREE": str(root),
                    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C",
                    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
                    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}

    def git(self, *args: str, stdin: bytes | None = None) -> bytes:
        return subprocess.run(["git", *args], input=stdin, env=self.env, cwd=self.root,
                              capture_output=True, check=True).stdout

    def status(self) -> bytes:
        argv = self.timed(["git", "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"])
        out = subprocess.run(argv, env=self.env, cwd=self.root, capture_output=True, check=True).stdout
        self.note_rss()
        return out

    def prime(self) -> None:
        plain = {k: v for k, v in self.env.items() if k not in ("GIT_DIR", "GIT_WORK_TREE")}
        subprocess.run(["git", "init", "-q", "--bare", str(self.git_dir)], env=plain, check=True)
        self.git("config", "core.bare", "false")
        self.git("config", "core.untrackedCache", "true" if self.untracked_cache else "false")
        self.git("config", "status.renames", "false")
        files = self.git("ls-files", "-z", "-o")
        self.git("update-index", "-z", "--add", "--info-only", "--stdin", stdin=files)
        tree = self.git("write-tree", "--missing-ok").decode().strip()
        commit = self.git("commit-tree", tree, "-m", "baseline").decode().strip()
        self.git("update-ref", "HEAD", commit)
        self.git("update-index", "--untracked-cache" if self.untracked_cache else "--no-untracked-cache")
        self.scan()  # fills the untracked cache and refreshes the index

    def scan(self) -> set[str]:
        out = self.status()
        return {os.fsdecode(item[3:]) for item in out.split(b"\0") if len(item) > 3}

    def close(self) -> None:
        shutil.rmtree(self.git_dir, ignore_errors=True)


class Watchdog(Candidate):
    """The work of watchdog's PollingObserver at each interval."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.snapshot: Any = None

    def take(self) -> Any:
        from watchdog.utils.dirsnapshot import DirectorySnapshot

        return DirectorySnapshot(str(self.root), recursive=True)

    def prime(self) -> None:
        self.snapshot = self.take()

    def scan(self) -> set[str]:
        from watchdog.utils.dirsnapshot import DirectorySnapshotDiff

        new = self.take()
        diff = DirectorySnapshotDiff(self.snapshot, new)
        self.snapshot = new
        paths: list[str | bytes] = [*diff.files_created, *diff.files_deleted, *diff.files_modified,
                            *diff.dirs_created, *diff.dirs_deleted]
        for src, dest in [*diff.files_moved, *diff.dirs_moved]:
            paths += [src, dest]
        cut = len(str(self.root)) + 1
        return {os.fsdecode(p)[cut:] for p in paths if len(os.fsdecode(p)) > cut}


class Find(Candidate):
    def run(self) -> None:
        with open(os.devnull, "wb") as sink:
            argv = self.timed(["find", str(self.root), "-printf", r"%i %s %T@ %C@ %m %P\0"])
            subprocess.run(argv, stdout=sink, check=True)
        self.note_rss()

    def prime(self) -> None:
        self.run()

    def scan(self) -> set[str]:
        self.run()
        return set()


def make(name: str, root: Path) -> Candidate:
    if name == "scanner":
        return Scanner(root, None)
    if name == "scanner-no-hints":
        return Scanner(root, True, hints=False)
    if name == "scanner-list-all":
        return Scanner(root, False)
    if name == "dict-walk":
        return DictWalk(root)
    if name in ("git-status", "git-status-no-uc"):
        return GitStatus(root, untracked_cache=name == "git-status")
    if name == "watchdog":
        return Watchdog(root)
    if name == "find":
        return Find(root)
    raise SystemExit(f"unknown candidate {name}")


# ---- the seven changes ----------------------------------------------------------------------------


def fixture(folder: Path) -> None:
    for name in ("keep/size.md", "keep/mtime.md", "keep/racy.md", "keep/del.md", "keep/ren.md",
                 "dir-old/x.md", "dir-old/y.md"):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((f"fixture {name} version 1\n".encode() * 100)[:FILE_SIZE])


def same_size_rewrite(path: Path, keep_mtime: bool) -> None:
    before = path.stat()
    path.write_bytes(path.read_bytes().replace(b"version 1", b"version 2"))
    mtime = before.st_mtime_ns if keep_mtime else before.st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(before.st_atime_ns, mtime))


def mutate(folder: Path) -> None:
    (folder / "new").mkdir()
    (folder / "new" / "added.md").write_bytes(b"new file\n")
    with (folder / "keep" / "size.md").open("ab") as f:
        f.write(b"one more line\n")
    same_size_rewrite(folder / "keep" / "mtime.md", keep_mtime=False)
    same_size_rewrite(folder / "keep" / "racy.md", keep_mtime=True)
    (folder / "keep" / "del.md").unlink()
    (folder / "keep" / "ren.md").rename(folder / "keep" / "ren2.md")
    (folder / "dir-old").rename(folder / "dir-new")


def checks(prefix: str, found: set[str]) -> list[bool]:
    def seen(rel: str) -> bool:
        parts = f"{prefix}/{rel}".split("/")
        return any("/".join(parts[:i]) in found for i in range(1, len(parts) + 1))

    return [
        seen("new/added.md"),
        seen("keep/size.md"),
        seen("keep/mtime.md"),
        seen("keep/racy.md"),
        seen("keep/del.md"),
        seen("keep/ren.md") and seen("keep/ren2.md"),
        seen("dir-old/x.md") and seen("dir-new/x.md") and seen("dir-new/y.md"),
    ]


def child(args: argparse.Namespace) -> None:
    root = Path(args.root)
    folder = root / f"zz-{args.child}"
    fixture(folder)
    cand = make(args.child, root)
    result: dict[str, Any] = {"candidate": args.child}
    try:
        if args.trace:
            import tracemalloc

            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            cand.prime()
            result["state_bytes"] = tracemalloc.get_traced_memory()[0] - base
            tracemalloc.stop()
        else:
            started = cpu_now()
            cand.prime()
            result["prime_cpu"] = cpu_now() - started
            scans = []
            for _ in range(args.scans):
                started = cpu_now()
                found = cand.scan()
                scans.append(cpu_now() - started)
                stray = {p for p in found if not p.startswith(f"zz-{args.child}/")}
                if stray:
                    result.setdefault("false_reports", sorted(stray)[:5])
            result["scan_cpu"] = scans
            if isinstance(cand, Scanner):
                result["note"] = cand.note()
            mutate(folder)
            result["checks"] = checks(f"zz-{args.child}", cand.scan())
            result["rss_kb"] = status_kb("self", "VmRSS")
            result["tool_kb"] = cand.tool_kb
        result["hwm_kb"] = status_kb("self", "VmHWM")
    finally:
        if isinstance(cand, GitStatus):
            cand.close()
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(result), flush=True)


def live_child(args: argparse.Namespace) -> None:
    """The daemon's imports, a PollThread at INTERVAL; prints when ready and every handover."""
    import committer.cli  # noqa: F401  (what the daemon process holds anyway)
    from committer.policy.filters import PathFilter
    from committer.watch.pollthread import PollThread
    from committer.watch.scanner import PollScanner

    root = Path(args.root)

    def on_paths(paths: list[str]) -> None:
        print(json.dumps({"at": time.time(), "paths": paths[:5], "count": len(paths)}), flush=True)

    trust = None if args.trust == "auto" else False
    thread = PollThread(PollScanner(root, PathFilter(root), trust_dir_mtime=trust), INTERVAL, on_paths)
    thread.start()
    print(json.dumps({"ready": time.time()}), flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    thread.stop()


# ---- the parent -----------------------------------------------------------------------------------


def run_child(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, *argv], env=env, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child {argv} failed: {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def baseline_hwm(env: dict[str, str], code: str) -> float:
    script = f"{code}; import pathlib; print([l for l in pathlib.Path('/proc/self/status').read_text()" \
             ".splitlines() if l.startswith('VmHWM')][0].split()[1])"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024


def live(root: Path, seconds: float, env: dict[str, str], trust: str) -> dict[str, Any]:
    """CPU over a window of whole intervals (it holds exactly that many scans), from half an
    interval after the prime; one write in the middle of an interval."""
    proc = subprocess.Popen([sys.executable, __file__, "--live-child", "--root", str(root), "--trust", trust],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    scans = max(1, round(seconds / INTERVAL))
    probe = root / "zz-live-probe.md"
    try:
        json.loads(proc.stdout.readline())  # primed; the first scan comes one interval later
        start = time.monotonic() + INTERVAL / 2
        time.sleep(INTERVAL / 2)
        cpu0 = proc_cpu(proc.pid)
        time.sleep(INTERVAL * 0.83)  # the write lands 0.33 interval after a scan, an arbitrary point
        probe.write_bytes(b"written at an arbitrary moment\n")
        written = time.time()
        handed = json.loads(proc.stdout.readline())
        time.sleep(max(0.0, start + scans * INTERVAL - time.monotonic()))
        window = time.monotonic() - start
        cpu = proc_cpu(proc.pid) - cpu0
        hwm = status_kb(proc.pid, "VmHWM") / 1024
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        probe.unlink(missing_ok=True)
    return {"cpu_pct": 100 * cpu / window, "window": window, "scans": scans, "hwm_mb": hwm,
            "latency": handed["at"] - written, "paths": handed["paths"], "trust": trust}


def fmt_pct(cpu: float) -> str:
    return f"{100 * cpu / INTERVAL:.2f} %"


def report_size(title: str, results: dict[str, dict[str, Any]], traces: dict[str, dict[str, Any]],
                base_mb: dict[str, float], lives: list[dict[str, Any]], out: list[str]) -> None:
    out.append(f"\n### {title}\n")
    out.append("| candidate | first scan CPU s | CPU s per scan, median (min-max) | % of a core at 10 s "
               "| child VmHWM MB | state MB (tracemalloc) | finds the 7 changes |")
    out.append("|---|---:|---:|---:|---:|---:|---|")
    ref = results.get("watchdog")
    for name, r in results.items():
        scans = r["scan_cpu"]
        median = statistics.median(scans)
        ratio = ""
        if ref and name != "watchdog" and median > 0:
            ratio = f" ({statistics.median(ref['scan_cpu']) / median:.1f}x less than watchdog)"
        hwm = r["hwm_kb"] / 1024
        if r.get("tool_kb"):
            hwm_s = f"{hwm:.1f} + {r['tool_kb'] / 1024:.1f} ({name.split('-')[0]} process)"
        else:
            hwm_s = f"{hwm:.1f}"
        state = traces.get(name, {}).get("state_bytes")
        state_s = f"{state / 2**20:.1f}" if state is not None else "-"
        found = r["checks"]
        if name == "find":
            found_s = "n/a (compares nothing)"
        else:
            missing = [c for c, ok in zip(CHECKS, found, strict=True) if not ok]
            found_s = f"{sum(found)}/7" + (f" (misses: {', '.join(missing)})" if missing else "")
        if r.get("false_reports"):
            found_s += f"; reported unchanged {r['false_reports']}"
        out.append(f"| {CANDIDATES[name]} | {r['prime_cpu']:.3f} | {median:.3f} ({min(scans):.3f}-{max(scans):.3f})"
                   f"{ratio} | {fmt_pct(median)} | {hwm_s} | {state_s} | {found_s} |")
    notes = [f"{name}: {r['note']}" for name, r in results.items() if r.get("note")]
    out.append("")
    out.append(f"VmHWM of a child that only imports: python alone {base_mb['python']:.1f} MB; "
               f"`import committer.watch.scanner` {base_mb['scanner']:.1f} MB; `import watchdog.utils.dirsnapshot` "
               f"{base_mb['watchdog']:.1f} MB; `import committer.cli, committer.watch.scanner` (the daemon's imports) "
               f"{base_mb['cli']:.1f} MB.")
    for note in notes:
        out.append(f"{note}.")
    for live_result in lives:
        mode = "as the daemon runs it" if live_result["trust"] == "auto" else "every directory listed"
        out.append(
            f"\nLive, {mode}: `import committer.cli` + `PollThread(PollScanner, 10 s)`, "
            f"{live_result['window']:.0f} s holding {live_result['scans']} scans: **{live_result['cpu_pct']:.2f} % "
            f"of a core** on "
            f"average, VmHWM **{live_result['hwm_mb']:.1f} MB**; a file written mid-interval was handed over "
            f"{live_result['latency']:.2f} s later ({live_result['paths']})."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10k,100k")
    parser.add_argument("--scans", type=int, default=7)
    parser.add_argument("--live", type=float, default=60.0, help="seconds of PollThread on the largest tree; 0: skip")
    parser.add_argument("--tmp", default="/tmp")
    parser.add_argument("--tree", help="measure an existing tree instead (e.g. a FUSE mount); it is written to: "
                        "a zz-<candidate> folder per candidate, removed afterwards")
    parser.add_argument("--only", default="", help="comma-separated candidates (default: all)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--live-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--trust", default="auto", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.live_child:
        live_child(args)
        return

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the trees are removed
    sizes = [int(s.lower().replace("k", "000")) for s in args.sizes.split(",")]
    names = [n for n in CANDIDATES if not args.only or n in args.only.split(",")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    work = Path(tempfile.mkdtemp(prefix="poll-bench-", dir=args.tmp))
    where = f"--tree {args.tree}" if args.tree else f"--sizes {args.sizes}"
    if args.only:
        where += f" --only {args.only}"
    place = "" if args.tree else f"; trees under {args.tmp} ({_fs_type(args.tmp)})"
    out = ["## Poll observers: one scan of an unchanged tree, and seven changes",
           f"\n`python bench/poll_bench.py {where} --scans {args.scans} --live {args.live:g}`"
           f" on {os.cpu_count()} CPUs, Linux {os.uname().release}{place}. "
           "CPU = user + system of the scanning child and its subprocesses."]
    try:
        base_mb = {
            "python": baseline_hwm(env, "pass"),
            "scanner": baseline_hwm(env, "import committer.watch.scanner"),
            "watchdog": baseline_hwm(env, "import watchdog.utils.dirsnapshot"),
            "cli": baseline_hwm(env, "import committer.cli, committer.watch.scanner"),
        }
        trees: list[tuple[int, Path, str]] = []
        if args.tree:
            root = Path(args.tree).resolve()
            files = dirs = 0
            for _, dirnames, filenames in os.walk(root):
                files, dirs = files + len(filenames), dirs + len(dirnames)
            trees.append((files, root, f"existing tree {root} ({_fs_type(str(root))}): {files:,} files in "
                                       f"{dirs:,} directories"))
            sizes = [files]
        else:
            trees = [(count, work / f"tree-{count}",
                      f"{count:,} files of 2 KB in {count // FILES_PER_DIR:,} directories") for count in sizes]
        for count, root, title in trees:
            if not args.tree:
                tell(f"building {count:,} files under {root}")
                started = time.monotonic()
                build_tree(root, count)
                tell(f"built in {time.monotonic() - started:.1f} s; letting the racy window pass")
                time.sleep(4.0)  # files written in the last 3 s are racy for the scanner: hashed, not idle
            results: dict[str, dict[str, Any]] = {}
            traces: dict[str, dict[str, Any]] = {}
            for name in names:
                tell(f"{count:,}: {name}")
                results[name] = run_child(["--child", name, "--root", str(root), "--scans", str(args.scans)], env)
                if not name.startswith(("find", "git-status")):
                    tell(f"{count:,}: {name} under tracemalloc")
                    traces[name] = run_child(["--child", name, "--root", str(root), "--scans", "0", "--trace"],
                                             env)
            lives = []
            if args.live > 0 and count == max(sizes) and "scanner" in names:
                for trust in ("auto", "no") if _fs_type(str(root)) in TRUSTED else ("auto",):
                    tell(f"{count:,}: PollThread live for {args.live:.0f} s, trust dir mtimes: {trust}")
                    lives.append(live(root, args.live, env, trust))
            report_size(title, results, traces, base_mb, lives, out)
            if not args.tree:
                shutil.rmtree(root, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n".join(out))


TRUSTED = ("ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "zfs", "tmpfs")  # as committer.watch.mounts.TRUSTED_FS


def _fs_type(path: str) -> str:
    sys.path.insert(0, str(REPO))
    try:
        from committer.watch.mounts import filesystem_type

        return filesystem_type(path) or "unknown filesystem"
    except ImportError:
        return "unknown filesystem"


if __name__ == "__main__":
    main()
