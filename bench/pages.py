"""Section 10: the history pages over a 10,000-commit history, through a real HTTP client.

The repository is built once with `git fast-import` (commits of 1-3 files among 2,000 notes, with the
BM-Meta trailer committer writes, a rename every 97 commits, a snapshot tag every 1,000), then served
by the same Starlette/uvicorn server the daemon runs, on loopback. Each page is fetched with one httpx
client (as a browser keeps its connection), after two untimed warm-ups. The
baseline is the git command line that shows the same history in a terminal, run as a process in the
same run: `git log -50 --raw` for the timeline, `git log --follow --raw -- PATH` for a file, and
`git show` for a commit.
"""

from __future__ import annotations

import json
import resource
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from report import Row, Section, med, ms, ratio, spread

from committer.daemon.maintenance import write_commit_graph
from committer.git.repo import GitRepo
from committer.git.runner import git_env
from committer.serve import filehistory, history
from committer.serve.access import Access
from committer.serve.app import HttpServer
from committer.serve.metrics import Metrics
from committer.serve.pages import Pages

COMMITS = 10_000
FILES = 2_000
TARGET = 0.2
FILE_TARGET = 0.15  # a file's page, once maintenance wrote the commit-graph
REPEATS = 15
HOT = "notes/n00000.md"  # touched every 50 commits: 200 revisions


@dataclass
class Measured:
    build: float = 0.0
    pages: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)  # the server's threads and its git processes
    baselines: dict[str, list[float]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)
    graph: float = 0.0


def build(git_dir: Path, commits: int = COMMITS) -> None:
    """A bare repository with `commits` commits, as committer would have written them."""
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(git_dir)], check=True, env=git_env())
    proc = subprocess.Popen(["git", f"--git-dir={git_dir}", "fast-import", "--quiet"], stdin=subprocess.PIPE,
                            env=git_env())
    assert proc.stdin is not None
    out = proc.stdin
    start = 1_750_000_000
    names = {n: f"notes/n{n:05d}.md" for n in range(FILES)}
    present: set[str] = set()
    for number in range(commits):
        touched = [HOT] if number % 50 == 0 else [names[(number * 7 + k * 13) % FILES] for k in range(1 + number % 3)]
        renamed = None
        if number % 97 == 96:
            old = names[number % FILES]
            if old != HOT and old in present and old not in touched:
                renamed = (old, f"notes/moved-{number}.md")
                names[number % FILES] = renamed[1]
                present.discard(old)
                present.add(renamed[1])
        meta = {"v": 1, "batch": f"b{number}", "host": "bench", "added": 0, "modified": len(touched),
                "deleted": 0, "renamed": 1 if renamed else 0, "first_event": "2026-01-01T00:00:00Z"}
        message = f"chore(sync): {len(touched)} files changed\n\nBM-Meta: {json.dumps(meta)}\n".encode()
        lines = [f"commit refs/heads/main\nmark :{number + 1}\n".encode(),
                 f"committer committer <committer@localhost> {start + number * 60} +0000\n".encode(),
                 b"data %d\n%s\n" % (len(message), message)]
        if number:
            lines.append(f"from :{number}\n".encode())
        if renamed:
            lines.append(f'R "{renamed[0]}" "{renamed[1]}"\n'.encode())
        for path in touched:
            present.add(path)
            body = (f"# note {path}\n\n" + f"revision {number} of this note, with a few words.\n" * 20).encode()
            lines.append(f'M 100644 inline "{path}"\n'.encode() + b"data %d\n%s\n" % (len(body), body))
        lines.append(b"\n")
        out.write(b"".join(lines))
        if number % 1000 == 999:
            out.write(f"tag snapshot-{number}\nfrom :{number + 1}\n".encode()
                      + f"tagger committer <committer@localhost> {start + number * 60} +0000\n".encode()
                      + b"data 8\nsnapshot\n")
    out.close()
    if proc.wait() != 0:
        raise RuntimeError("git fast-import failed")


def _timed(fetch: Callable[[], None]) -> float:
    started = time.perf_counter()
    fetch()
    return time.perf_counter() - started


def _children() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _served(fetch: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the request): the process's CPU less this (the client's) thread's, plus
    the git processes that ended meanwhile. CPU is what a loaded machine changes least."""
    wall, cpu, mine, kids = time.perf_counter(), time.process_time(), time.thread_time(), _children()
    fetch()
    used = time.process_time() - cpu - (time.thread_time() - mine) + _children() - kids
    return time.perf_counter() - wall, used


def measure(base: Path, tell: Callable[[str], None], repeats: int = REPEATS) -> Measured:
    got = Measured()
    git_dir = base / "pages.git"
    started = time.perf_counter()
    build(git_dir)
    got.build = time.perf_counter() - started
    tell(f"built {COMMITS:,} commits in {got.build:.1f} s")
    repo = GitRepo(git_dir, base / "pages-data", "main")
    (base / "pages-data").mkdir(exist_ok=True)
    head = repo.head()
    middle = repo.git("rev-parse", f"main~{COMMITS // 2}").stdout.decode().strip()
    pages = Pages(repo, Access("open"), lambda: {"push": {"pending_commits": 0}}, lambda op, args: {})
    server = HttpServer(("127.0.0.1", 0), Metrics(process=False), lambda: {"healthy": True}, lambda: True,
                        pages=pages)
    server.start()
    url = f"http://127.0.0.1:{server.port}"
    hot = f"/file/{HOT} (newest {history.FILE_PAGE} of its {COMMITS // 50} revisions)"
    targets = {
        f"{hot}, before the first maintenance (no commit-graph)": (
            f"/file/{HOT}", ["log", f"-{history.FILE_PAGE}", "--follow", "--raw", "main", "--", HOT]),
        "/ (newest 50 commits)": ("/", ["log", "-50", "--raw", "main"]),
        f"/?skip={COMMITS - 100} (the oldest commits)": (
            f"/?skip={COMMITS - 100}", ["log", "-50", f"--skip={COMMITS - 100}", "--raw", "main"]),
        hot: (f"/file/{HOT}", ["log", f"-{history.FILE_PAGE}", "--follow", "--raw", "main", "--", HOT]),
        f"{hot}, again (a reload: kept while the branch has not moved)": (
            f"/file/{HOT}", ["log", f"-{history.FILE_PAGE}", "--follow", "--raw", "main", "--", HOT]),
        "/commit/<sha> (HEAD)": (f"/commit/{head}", ["show", str(head)]),
        "/commit/<sha> (mid-history, side by side)": (f"/commit/{middle}?view=split", ["show", middle]),
    }
    client = httpx.Client(trust_env=False)
    try:
        for name, (path, args) in targets.items():
            if name == "/ (newest 50 commits)":
                started = time.perf_counter()
                write_commit_graph(repo)
                got.graph = time.perf_counter() - started
                tell(f"the daemon's maintenance: commit-graph with changed-path filters in {got.graph:.1f} s")
            tell(f"timing {name}")

            first_visit = path.startswith("/file/") and "again" not in name

            def get(path: str = path, name: str = name, first_visit: bool = first_visit) -> None:
                if first_visit:
                    filehistory.forget()  # what a first visit costs, not a page kept from the last fetch
                answer = client.get(url + path)
                if answer.status_code != 200:
                    raise RuntimeError(f"{path}: HTTP {answer.status_code}")
                got.sizes[name] = len(answer.content)

            def show(args: list[str] = args) -> None:
                subprocess.run(["git", f"--git-dir={git_dir}", "--no-pager", *args], check=True,
                               stdout=subprocess.DEVNULL, env=git_env())

            for _ in range(2):
                get()
                show()
            served = [_served(get) for _ in range(repeats)]
            got.pages[name] = [wall for wall, _ in served]
            got.cpu[name] = [cpu for _, cpu in served]
            got.baselines[name] = [_timed(show) for _ in range(repeats)]
            got.commands[name] = "git " + " ".join(a if len(a) < 30 else a[:10] + "…" for a in args)
    finally:
        client.close()
        server.stop()
    return got


def rows(got: Measured, section: Section) -> None:
    for name, samples in got.pages.items():
        value, base = med(samples), med(got.baselines[name])
        target = FILE_TARGET if name.startswith("/file/") and "before" not in name else TARGET
        section.rows.append(Row(
            f"{name}, {got.sizes.get(name, 0) // 1000} KB of HTML",
            f"{spread(samples)}; CPU {ms(med(got.cpu[name]))}" if got.cpu.get(name) else spread(samples),
            f"`{got.commands[name]}`: {spread(got.baselines[name])}",
            ratio(value / base) if base else "", f"< {int(target * 1000)} ms", value < target))
    section.notes.append(
        f"A {COMMITS:,}-commit history built with fast-import in {got.build:.1f} s; each page fetched with one "
        f"httpx client, {REPEATS} times after two warm-ups; the server is the daemon's own (uvicorn on a thread), "
        "every git read a process of its own. The first row is before the daemon's maintenance wrote the "
        f"commit-graph with changed-path filters ({got.graph:.1f} s here, on its own thread at a quiet moment); "
        "the others after it. A file's page is timed as a first visit (the pages it keeps are dropped "
        "before each fetch), and once more as a reload. Baselines: the git command that prints the same history "
        "in a terminal. CPU: the median CPU seconds of one request, the server's threads and the git processes "
        "it started (a loaded machine stretches the wall time, much less the CPU).")
