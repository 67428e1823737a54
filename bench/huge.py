"""Section 9: one commit of a huge change in bounded memory, on real trees of 300,000 and 1,000,000 files.

The trees (small notes, 50 a directory) are built once under --cache (default /var/tmp/committer-bench)
and kept between runs; each run makes a fresh git dir. Measured for `committer init` (the backfill) and
for `committer run --once` after every file was rewritten: the peak RSS of the committer process, of
its largest git child (fast-import, status, ls-tree), and of the whole process tree at once (what a
container's memory limit counts), sampled every 20 ms from /proc, plus the wall time. The first push goes
to a file:// mirror, whose receiving side (`git receive-pack` and its connectivity `git rev-list`) runs as
a child of the push: it is sampled apart, so the sender's tree (what a pod's limit counts when the remote
is another machine) is given against the goal, the receiver's and the whole tree's peaks as references.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from report import Row, Section

TARGETS_MB = {300_000: 150.0, 1_000_000: 200.0}
PER_DIR = 50


def _rel(index: int) -> str:
    directory = index // PER_DIR
    return f"g{directory // 200:03d}/d{directory:05d}/n{index:07d}.md"


def _content(index: int, rev: int) -> bytes:
    return (f"# note {index}\n\nrevision {rev} of a small note, as a knowledge base holds thousands of.\n"
            f"{'text ' * (index % 23)}\n").encode()


def build(cache: Path, count: int) -> tuple[Path, int]:
    """The data directory of `count` notes (built once), and the revision its files are at."""
    root = cache / f"huge-{count}"
    data, marker = root / "data", root / "revision"
    if marker.is_file():
        return data, int(marker.read_text())
    made: set[str] = set()
    for index in range(count):
        rel = _rel(index)
        parent = rel.rsplit("/", 1)[0]
        if parent not in made:
            os.makedirs(data / parent, exist_ok=True)
            made.add(parent)
        with open(data / rel, "wb") as handle:
            handle.write(_content(index, 0))
    marker.write_text("0")
    return data, 0


def rewrite(data: Path, count: int, rev: int) -> None:
    """Every file gets new content (the next revision)."""
    for index in range(count):
        with open(data / _rel(index), "wb") as handle:
            handle.write(_content(index, rev))
    (data.parent / "revision").write_text(str(rev))


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def _kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@dataclass
class Peak:
    """What one measured command used at most."""

    seconds: float
    main_mb: float
    child_mb: float
    child: str
    tree_mb: float
    sender_mb: float = 0.0  # the tree less a receiving side it started (a file:// push's receive-pack)
    receiver_mb: float = 0.0
    receiver_child_mb: float = 0.0
    receiver_child: str = ""


def _name(pid: int) -> str:
    words = _cmdline(pid).split(b"\0")
    return " ".join(w.decode(errors="replace") for w in words if w and not w.startswith(b"-"))[:60]


def receives(pid: int) -> bool:
    """Whether a process is git's receiving side: `git-receive-pack`, `git receive-pack`, or the shell a
    file:// push starts it with."""
    words = [w for w in _cmdline(pid).split(b"\0") if w]
    return any(w.rsplit(b"/", 1)[-1] in (b"git-receive-pack", b"receive-pack") or w.startswith(b"git-receive-pack ")
               for w in words[:3])


class Sampler:
    """RSS of a process tree, the receiving side's subtree (and all under it) apart from the sender's."""

    def __init__(self, root: int, program: str) -> None:
        self.root = root
        self.own = program.encode()  # its argv[0] (/proc may not show it yet when it has just started)
        self.main = self.child = self.tree = self.sender = self.receiver = self.receiver_child = 0
        self.child_name = self.receiver_child_name = ""

    def sample(self) -> None:
        self.main = max(self.main, _kb(self.root, "VmHWM"))
        sender, receiver = _kb(self.root, "VmRSS"), 0
        stack = [(pid, False) for pid in _children(self.root)]
        while stack:
            pid, inside = stack.pop()
            if _cmdline(pid).split(b"\0")[0] == self.own:
                continue  # forked, not yet exec'd git: its pages are the parent's, counted once
            inside = inside or receives(pid)
            rss = _kb(pid, "VmRSS")
            if inside:
                receiver += rss
                if rss > self.receiver_child:
                    self.receiver_child, self.receiver_child_name = rss, _name(pid)
            else:
                sender += rss
                if rss > self.child:
                    self.child, self.child_name = rss, _name(pid)
            stack.extend((child, inside) for child in _children(pid))
        self.tree = max(self.tree, sender + receiver)
        self.sender = max(self.sender, sender)
        self.receiver = max(self.receiver, receiver)

    def peak(self, seconds: float) -> Peak:
        return Peak(seconds, self.main / 1024, self.child / 1024, self.child_name.strip(), self.tree / 1024,
                    self.sender / 1024, self.receiver / 1024, self.receiver_child / 1024,
                    self.receiver_child_name.strip())


def run_measured(argv: list[str], env: dict[str, str]) -> Peak:
    """Run a command to its end, sampling the memory of it and its descendants every 20 ms."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = Sampler(proc.pid, argv[0])
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            sampler.sample()

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    _, err = proc.communicate()
    done.set()
    thread.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[2:5])} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return sampler.peak(time.perf_counter() - started)


def move(data: Path, back: bool = False) -> int:
    """Rename every top-level folder (`g000` -> `m000`), or back; returns how many were renamed."""
    old, new = ("m", "g") if back else ("g", "m")
    names = sorted(p.name for p in data.iterdir() if p.name.startswith(old))
    for name in names:
        os.rename(data / name, data / (new + name[1:]))
    return len(names)


def measure(count: int, cache: Path, tmp: Path, env: dict[str, str], say: object) -> dict[str, Peak]:
    """init of the tree into a fresh git dir, its first push to an empty file:// mirror, then run --once
    after every file was rewritten, and after every top-level folder was renamed."""
    log = say if callable(say) else print
    log(f"huge: a tree of {count:,} files (built once under {cache})")
    data, rev = build(cache, count)
    move(data, back=True)  # a run cut short may have left it moved
    git_dir, mirror = tmp / f"huge-{count}.git", tmp / f"huge-{count}-mirror.git"
    base = [sys.executable, "-m", "committer"]
    where = ["--data-dir", str(data), "--git-dir", str(git_dir)]
    log(f"huge: committer init of {count:,} files")
    got = {"init": run_measured([*base, "init", *where], env)}
    log(f"huge: committer push of {count:,} files to an empty file:// mirror")
    subprocess.run(["git", "init", "-q", "--bare", str(mirror)], check=True)
    got["push"] = run_measured([*base, "push", *where, "--remote", f"file://{mirror}"], env)
    _same_tree(git_dir, mirror)
    subprocess.run(["rm", "-rf", str(mirror)], check=True)
    log(f"huge: rewriting {count:,} files")
    rewrite(data, count, rev + 1)
    log(f"huge: committer run --once after {count:,} files changed")
    got["once"] = run_measured([*base, "run", "--once", *where], env)
    _clean(git_dir, data, "after run --once")
    folders = move(data)
    log(f"huge: committer run --once after {folders} top-level folders ({count:,} files) were renamed")
    try:
        got["move"] = run_measured([*base, "run", "--once", *where], env)
        _clean(git_dir, data, "after the move")
        log_out = subprocess.run(["git", f"--git-dir={git_dir}", "log", "-1", "--format=%(trailers:key=BM-Meta)"],
                                 capture_output=True, check=True).stdout.decode()
        if '"renamed":0' in log_out or '"added":0' not in log_out:
            raise RuntimeError(f"the move was not committed as renames: {log_out}")
    finally:
        move(data, back=True)
    subprocess.run(["rm", "-rf", str(git_dir)], check=True)
    return got


def _clean(git_dir: Path, data: Path, when: str) -> None:
    status = subprocess.run(["git", f"--git-dir={git_dir}", f"--work-tree={data}", "status", "--porcelain"],
                            capture_output=True, check=True).stdout
    if status.strip():
        raise RuntimeError(f"{when} the tree differs from HEAD: {status[:500]!r}")


def _same_tree(git_dir: Path, mirror: Path) -> None:
    trees = [subprocess.run(["git", f"--git-dir={g}", "rev-parse", "main^{tree}"], capture_output=True,
                            check=True).stdout for g in (git_dir, mirror)]
    if trees[0] != trees[1]:
        raise RuntimeError("the mirror does not hold what committer init committed")


_KINDS = (("init", "`committer init` (the backfill)"),
          ("push", "`committer push`, the first push of that backfill to an empty file:// mirror"),
          ("once", "`committer run --once` after every file was rewritten"),
          ("move", "`committer run --once` after every top-level folder was renamed (every file moved)"))


def rows(count: int, got: dict[str, Peak], section: Section) -> None:
    target = TARGETS_MB.get(count)
    for kind, what in _KINDS:
        if kind not in got:
            continue
        peak = got[kind]
        tree_target = {"push": 250.0, "move": 200.0}.get(kind)
        section.rows.append(Row(
            f"{count:,} files: {what}: peak RSS of the committer process",
            f"{peak.main_mb:.0f} MB", f"{peak.seconds:.0f} s wall", f"{peak.main_mb * 2**20 / count:.0f} B a file",
            f"< {target:g} MB" if target else "—", peak.main_mb < target if target else True,
        ))
        if kind == "push":
            push_rows(count, peak, tree_target or 250.0, section)
            continue
        section.rows.append(Row(
            f"{count:,} files: {what}: peak of the whole process tree (committer + git, sampled)",
            f"{peak.tree_mb:.0f} MB", f"largest git child {peak.child_mb:.0f} MB ({peak.child})", "—",
            f"< {tree_target:g} MB" if tree_target else "reference",
            peak.tree_mb < tree_target if tree_target else True,
        ))
    if "move" in got and "once" in got:
        ratio = got["move"].seconds / got["once"].seconds
        section.rows.append(Row(
            f"{count:,} files: moving every file against rewriting every file (`run --once`, wall)",
            f"{got['move'].seconds:.0f} s", f"rewriting: {got['once'].seconds:.0f} s", f"{ratio:.2f}x",
            "within 2x", ratio <= 2.0,
        ))


def push_rows(count: int, peak: Peak, goal: float, section: Section) -> None:
    """A push to a file:// mirror runs git's receiving side as a child of the push: in a deployment it runs
    on the remote's machine, so the goal is the sender's tree (what the pod's cgroup counts)."""
    section.rows.append(Row(
        f"{count:,} files: the first push: peak of the sender's tree (committer + its git children, sampled: "
        "what the pod's memory limit counts)",
        f"{peak.sender_mb:.0f} MB", f"largest git child {peak.child_mb:.0f} MB ({peak.child})", "—",
        f"< {goal:g} MB", peak.sender_mb < goal,
    ))
    section.rows.append(Row(
        f"{count:,} files: the first push: peak of the receiving side (`git receive-pack` and its children; "
        "on the remote's machine in a deployment)",
        f"{peak.receiver_mb:.0f} MB", f"largest {peak.receiver_child_mb:.0f} MB ({peak.receiver_child})", "—",
        "reference", None,
    ))
    section.rows.append(Row(
        f"{count:,} files: the first push: peak of the whole tree, a file:// receiver included (sampled at once)",
        f"{peak.tree_mb:.0f} MB", f"sender + receiver peaks: {peak.sender_mb + peak.receiver_mb:.0f} MB", "—",
        "reference", None,
    ))


def main() -> None:
    """`python bench/huge.py 100000,300000`: this section alone, its table on stdout."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("counts", help="tree sizes, comma-separated")
    parser.add_argument("--cache", type=Path, default=Path("/var/tmp/committer-bench"))
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMITTER_")}
    section = Section("9. One commit of a huge change: peak memory of `init`, the first push and `run --once`")
    with tempfile.TemporaryDirectory(prefix="committer-bench-huge-") as tmp:
        for count in (int(c) for c in args.counts.split(",")):
            rows(count, measure(count, args.cache, Path(tmp), env, lambda line: print(line, file=sys.stderr)),
                 section)
    print(f"uptime: {os.getloadavg()}")
    for row in section.rows:
        print(f"| {row.what} | {row.median} | {row.baseline} | {row.ratio} | {row.target} | {row.result} |")


if __name__ == "__main__":
    main()
