"""Maintenance at quiet moments, on a thread of its own joined at shutdown: small fast-import commits
leave loose objects and small packs behind, which a geometric repack rolls up; and the commit-graph
gets the new commits, so a file's history (its page, `committer log PATH`) stays fast."""

from __future__ import annotations

import time

from committer.core import logs
from committer.core.errors import CommitterError
from committer.core.service import Worker
from committer.git.repo import GitRepo

log = logs.get(__name__)

# Once this many commits landed and the directory has been quiet this long, a repack runs.
AFTER_COMMITS, WHEN_QUIET = 50, 60.0
# Each commit is a small pack of its own (git/fastimport.py): after this many, they are rolled up even
# while writes go on, so lookups never search hundreds of packs.
ROLL_UP_AFTER = 32


def maintain(repo: GitRepo, loose_limit: int = 500, pack_limit: int = 20) -> bool:
    """Roll loose objects and small packs into bigger packs (geometric repack); True when it ran."""
    size = repo.size()
    if size["loose"] <= loose_limit and size["packs"] <= pack_limit:
        return False
    started = time.monotonic()
    try:
        repo.git("repack", "-d", "-l", "--geometric=2", "--quiet")
    except CommitterError as exc:
        log.warning("maintenance_failed", error=exc.message)
        return False
    log.info("maintenance", task="repack --geometric=2", seconds=round(time.monotonic() - started, 2),
             before=size, after=repo.size())
    return True


def write_commit_graph(repo: GitRepo) -> bool:
    """Add the commits made since the last time to the commit-graph, with changed-path (Bloom) filters:
    path-limited history then skips most commits without reading their trees. Incremental (`--split`),
    so its cost follows the new commits, not the history."""
    started = time.monotonic()
    try:
        repo.git("commit-graph", "write", "--reachable", "--changed-paths", "--split", "--no-progress")
    except CommitterError as exc:
        log.warning("maintenance_failed", task="commit-graph", error=exc.message)
        return False
    log.info("maintenance", task="commit-graph write --changed-paths", seconds=round(time.monotonic() - started, 2))
    return True


def has_commit_graph(repo: GitRepo) -> bool:
    """Whether the repository has a commit-graph (one file, or a chain of them), read without git."""
    info = repo.git_dir / "objects" / "info"
    return (info / "commit-graph").is_file() or (info / "commit-graphs" / "commit-graph-chain").is_file()


def maintain_all(repo: GitRepo) -> None:
    maintain(repo)
    write_commit_graph(repo)


class Maintenance(Worker):
    """Counts commits; at a quiet moment after enough of them, repacks and writes the commit-graph on its
    own thread (one run per start: idle, it is not alive, and nothing is down). A history that has no
    commit-graph yet (written before the daemon wrote them, or by another git) gets one at the first quiet
    moment, without waiting for new commits: until then a file's page walks every commit's trees."""

    name = "maintenance"
    thread_name = "committer-gc"

    def __init__(self, repo: GitRepo) -> None:
        super().__init__()
        self.repo = repo
        self._commits = 0
        self._last_commit = time.monotonic()
        self._graph_due = not has_commit_graph(repo)  # a stat, not a git process, at start-up
        self._repack = False

    def committed(self) -> None:
        self._commits += 1
        self._last_commit = time.monotonic()

    def tick(self) -> None:
        """Called from the loop: start a repack when it is due and none runs."""
        quiet = time.monotonic() - self._last_commit >= WHEN_QUIET
        roll_up = self._commits >= ROLL_UP_AFTER  # even while writes go on: many small packs slow every import
        due = roll_up or (quiet and (self._commits >= AFTER_COMMITS or self._graph_due))
        if self.alive() or not due:
            return
        self._repack = roll_up or self._commits >= AFTER_COMMITS
        self._commits = 0
        self._graph_due = False
        self.start()

    def interrupt(self) -> None:
        """Cut a repack under way short (it changes nothing a later one does not redo)."""
        if self.ident is not None and self.alive():
            self.repo.runner.terminate(self.ident)

    def run(self) -> None:
        if self._repack:
            maintain_all(self.repo)
        elif self.repo.head() is not None:  # only the missing commit-graph (none for an empty history)
            write_commit_graph(self.repo)
