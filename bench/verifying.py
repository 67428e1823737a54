"""Section 11: what `committer verify` costs on the 100k tree, against doing the same by hand.

The tree is committed (`committer init`) and pushed to an empty file:// mirror and, through `committer push`,
to the loopback smart-HTTP server of the tests (`git http-backend`, with a token: the same path as GitHub's).
Ours: `committer verify --json` as a whole process against each (a full fetch into a temporary repository,
`git fsck --full`, the tree compared, the LFS pointers looked for; this tree has no LFS object). Baseline on the
same mirror in the same run: what a careful person would type, `git clone --bare --no-local` of the mirror then
`git fsck --full` in the clone. The repository's size is given, since the cost follows it, not the file count.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from report import Row, Section, med, ms, ratio, spread
from workload import Tree

TOKEN = "ghp_BenchToken0123456789abcdefABCDEF000000"


def _committer(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "committer", *args, "--log-format", "json"], env=env,
                          capture_output=True, text=True, check=False)


def _verify(env: dict[str, str], place: list[str], remote: str) -> tuple[float, float]:
    """(whole process, the check itself) of one `committer verify`, in seconds."""
    started = time.perf_counter()
    done = _committer(env, "verify", "--json", *place, "--remote", remote)
    whole = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"committer verify failed: {done.stderr[-2000:]}")
    return whole, float(json.loads(done.stdout)["seconds"])


def measure(base: Path, env: dict[str, str], size: int, repeats: int, tell: Callable[[str], None]) -> dict[str, object]:
    root = base / "verify"
    tree = Tree(root / "data", size)
    tell(f"building {size} files")
    tree.build()
    git_dir, mirror = root / "committer.git", root / "mirror.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(mirror)], check=True)
    place = ["--data-dir", str(tree.data), "--git-dir", str(git_dir)]
    tell("committer init and the first push to a file:// mirror")
    done = _committer(env, "init", *place, "--remote", str(mirror))
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    got: dict[str, object] = {"size": _size(mirror)}
    tell(f"committer verify against the file:// mirror, {repeats} runs")
    runs = [_verify(env, place, str(mirror)) for _ in range(repeats)]
    got["file"] = runs
    tell(f"baseline: git clone --bare --no-local, then git fsck --full, {repeats} runs")
    baseline = []
    for run in range(repeats):
        clone = root / f"clone-{run}.git"
        started = time.perf_counter()
        subprocess.run(["git", "clone", "-q", "--bare", "--no-local", str(mirror), str(clone)], check=True)
        subprocess.run(["git", f"--git-dir={clone}", "fsck", "--full", "--no-dangling", "--no-progress"], check=True,
                       capture_output=True)
        baseline.append(time.perf_counter() - started)
        shutil.rmtree(clone)
    got["baseline"] = baseline
    got["http"] = _over_http(root, env, place, repeats, tell)
    shutil.rmtree(root)
    return got


def _over_http(root: Path, env: dict[str, str], place: list[str], repeats: int,
               tell: Callable[[str], None]) -> list[tuple[float, float]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.gitserver import GitHTTPServer

    server = GitHTTPServer(root / "served", token=TOKEN)
    server.start()
    try:
        http_env = {**env, "COMMITTER_TOKEN": TOKEN}
        tell("committer push to the loopback smart-HTTP server")
        done = _committer(http_env, "push", *place, "--remote", server.url)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-2000:])
        tell(f"committer verify over smart HTTP, {repeats} runs")
        return [_verify(http_env, place, server.url) for _ in range(repeats)]
    finally:
        server.stop()


def _size(git_dir: Path) -> str:
    out = subprocess.run(["git", f"--git-dir={git_dir}", "count-objects", "-v"], capture_output=True, text=True,
                         check=True).stdout
    counts = dict(line.split(": ", 1) for line in out.splitlines())
    objects = int(counts["count"]) + int(counts["in-pack"])
    kib = int(counts["size"]) + int(counts["size-pack"])
    return f"{objects:,} objects, {kib / 1024:.0f} MB"


def rows(name: str, got: dict[str, object], section: Section) -> None:
    file_runs: list[tuple[float, float]] = got["file"]  # type: ignore[assignment]
    http_runs: list[tuple[float, float]] = got["http"]  # type: ignore[assignment]
    baseline: list[float] = got["baseline"]  # type: ignore[assignment]
    whole = [w for w, _c in file_runs]
    section.rows.append(Row(
        f"{name} tree: `committer verify` against a file:// mirror (whole process)", spread(whole),
        f"clone --bare --no-local + fsck --full {ms(med(baseline))}", f"{ratio(med(whole) / med(baseline))}",
        "—", None,
    ))
    section.rows.append(Row(
        f"{name} tree: the check itself (fetch into a temporary repository, fsck, tree, LFS pointers)",
        spread([c for _w, c in file_runs]), "—", "—", "—", None,
    ))
    section.rows.append(Row(
        f"{name} tree: `committer verify` over smart HTTP with a token (loopback `git http-backend`)",
        spread([w for w, _c in http_runs]), "—", f"{ratio(med([w for w, _c in http_runs]) / med(whole))} of file://",
        "—", None,
    ))
    section.notes.append(f"the remote holds {got['size']} (one commit of the whole tree); the cost follows that "
                         "size and the history's, not the file count")
