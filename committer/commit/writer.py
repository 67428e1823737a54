"""Writing one pass's blobs and commits through `git fast-import`, in bounded memory.

fast-import keeps an entry for every object it wrote and the trees of the commits it builds: about
120 MB for a million blobs, 260 MB with their commit. A pass that stays under SESSION_LIMIT objects
and paths (every batch of the watcher) is one fast-import process writing one pack and moving the
branch when it ends, as before. A larger one (a first commit of a bucket of millions of files) is
written by several processes in turn, each ending with a pack of its own: blobs as they are read, then
the commits, which name blobs by id and continue from the previous process's last commit on a private
staging ref. The branch moves once, after the last one, with `update-ref` against the commit the pass
started from: until then nothing is committed, and a pass cut short leaves only unreferenced objects.

The first process may be one started ahead (`spare`, after the last commit): its start and its reading of
the repository are then off the path from a write to its commit. It reads no reference until it ends, and
every commit names its parent (`from`), so it is as safe as one started now: when the branch moved
meanwhile, fast-import moves it only forward, and the staged path moves it against the id it started from.
"""

from __future__ import annotations

from collections.abc import Sequence

from committer.git.fastimport import FastImport, Usage
from committer.git.repo import GitRepo
from committer.git.setup import STAGING_REF, clear_staging

# Objects (blobs, or changed paths of commits) one fast-import process takes at most: about 30 MB of it.
SESSION_LIMIT = 100_000


class Writer:
    """fast-import processes for one pass; `finish()` moves the branch and returns the last commit."""

    def __init__(self, repo: GitRepo, parent: str | None, limit: int = SESSION_LIMIT,
                 spare: FastImport | None = None) -> None:
        self.repo = repo
        self.spare = spare  # a process started ahead, taken as the first one; given back if unused
        self.start = parent
        self.limit = limit
        self._process: FastImport | None = None
        self._objects = 0  # blobs and changed paths the current process took
        self._wrote = False  # the current process has written a commit
        self._ended = 0  # processes that have finished
        self._staged: bool | None = None  # decided before the first commit
        self._tip: str | None = parent  # the last commit: an id, or a mark of the current process
        self.usage: list[Usage] = []  # each finished process's CPU and run-queue wait
        self.ahead = False  # the first process was one started ahead

    def _fast_import(self) -> FastImport:
        if self._process is None:
            spare, self.spare = self.spare, None
            self.ahead = self.ahead or (spare is not None and self._ended == 0)
            self._process = spare or FastImport(self.repo)
            self._objects, self._wrote = 0, False
        return self._process

    def unused(self) -> FastImport | None:
        """The process started ahead, when this pass wrote nothing to it (it stays ready for the next)."""
        spare, self.spare = self.spare, None
        return spare

    def _end(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if self._wrote:
            assert self._tip is not None
            self._tip = process.finish(self._tip)
        else:
            process.finish_blobs()
        self._ended += 1
        if process.usage is not None:
            self.usage.append(process.usage)

    def blob(self, data: bytes, _sha: str = "") -> None:
        """Send one blob (commits name it by its id)."""
        if self._objects >= self.limit and not self._wrote:
            self._end()
        self._fast_import().blob_nomark(data)
        self._objects += 1

    def plan(self, paths: int) -> None:
        """How many changed paths the commits will carry: past what one process takes, they are staged."""
        self._staged = self._ended > 0 or self._objects + paths > self.limit

    def commit(
        self, identity: tuple[str, str], message: str, deletes: Sequence[str], modifies: Sequence[tuple[str, str, str]]
    ) -> None:
        """Write one commit on the last one (or on the pass's parent)."""
        size = len(deletes) + len(modifies)
        if self._staged is None:
            self.plan(size)
        if self._staged:
            if self._objects and self._objects + size > self.limit:
                self._end()
            if self._tip == self.start:  # the first commit: a staging ref a pass cut short left is dropped
                clear_staging(self.repo)
        ref = STAGING_REF if self._staged else self.repo.ref
        self._tip = self._fast_import().write_commit(ref, self._tip, identity, message, deletes, modifies)
        self._objects += size
        self._wrote = True

    def finish(self) -> str | None:
        """End the last process; the branch is at the last commit now (None when nothing was committed)."""
        self._end()
        if self._tip is None or self._tip == self.start:
            return None
        if self._staged:
            self.repo.git("update-ref", "-m", "committer: commit", self.repo.ref, self._tip, self.start or "0" * 40)
            clear_staging(self.repo)
        return self._tip

    def abort(self) -> None:
        """Drop what is not finished: no reference moves."""
        process, self._process = self._process, None
        if process is not None:
            process.abort()


