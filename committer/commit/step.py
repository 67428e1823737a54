"""The commit step: candidate paths in, one exact commit out (or none when nothing changed)."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from committer.commit import message, parts, similar
from committer.commit.beside import Beside
from committer.commit.bmmeta import BmMeta
from committer.commit.changes import DELETED, Change, ChangeSet
from committer.commit.collect import Limits, Pass, collect
from committer.commit.config import CommitConfig
from committer.commit.headlookup import HeadLookup
from committer.commit.held import HeldFiles
from committer.commit.holds import Holds
from committer.commit.lfspaths import LfsPaths
from committer.commit.trace import Trace, mark
from committer.commit.writer import SESSION_LIMIT, Writer
from committer.core import clock, events, logs
from committer.core.errors import GitError
from committer.core.records import IN_MEMORY, Spill
from committer.git import lfs
from committer.git.fastimport import FastImport
from committer.git.layout import state_dir
from committer.git.objects import TreeEntry
from committer.git.repo import GitRepo
from committer.policy import filters, secrets
from committer.policy.filters import PathFilter

log = logs.get(__name__)

OnCommit = Callable[[str | None, int, float], None]  # (op, files, seconds) of each commit


@dataclass(frozen=True)
class CommitResult:
    """What one pass produced: the new commit (None when nothing changed) and its changes."""

    sha: str | None
    changes: ChangeSet
    batch: str
    seconds: float


@dataclass(frozen=True)
class Sizes:
    """How much of a pass one fast-import process takes and a record list keeps in memory."""

    process_objects: int = SESSION_LIMIT
    records_in_memory: int = IN_MEMORY


SIZES = Sizes()

# A fast-import started ahead is used within this long, or replaced: one started much earlier may have
# read settings since changed, or lost its temporary pack to a `git gc --prune=now` run by hand.
AHEAD_FOR = 900.0


def make_limits(config: CommitConfig, repo: GitRepo) -> Limits:
    """Size and content rules: LFS when git-lfs is there, the size holds otherwise, secret scanning."""
    store = None
    if config.lfs_threshold and lfs.available():
        git_dir = repo.git_dir

        def store(fd: int, size: int) -> bytes:
            return lfs.store(git_dir, fd, size)

    return Limits(
        lfs_threshold=config.lfs_threshold,
        max_file_size=config.max_file_size,
        lfs_store=store,
        find_secret=secrets.find_secret,
        scanned=filters.unmatched(config.secret_allow),
    )


def spill_dir(git_dir: Path) -> Path:
    """Where the record lists of a large pass go (unlinked files: nothing is left behind)."""
    return state_dir(git_dir) / "tmp"


class CommitStep:
    """Reads the data directory and writes commits into the repository; the hold, the held files and the
    LFS paths it consults and keeps up to date are parts of their own, passed in."""

    def __init__(
        self, config: CommitConfig, repo: GitRepo, pfilter: PathFilter, holds: Holds, held: HeldFiles,
        lfs_paths: LfsPaths, on_commit: OnCommit | None = None, emit: events.Emit = events.nothing,
        sizes: Sizes = SIZES,
    ) -> None:
        self.config = config
        self.repo = repo
        self.pfilter = pfilter
        self.holds = holds
        self.held = held
        self.lfs_paths = lfs_paths
        self.on_commit = on_commit
        self.emit = emit
        self.sizes = sizes
        self.limits = dataclasses.replace(make_limits(config, repo), is_lfs=lambda path: path in lfs_paths)
        self.identity = config.author
        self.host = socket.gethostname()
        self.bmmeta = BmMeta(repo.data_dir)
        self.head: str | None = repo.head()
        self.lookup = HeadLookup(repo)  # a batch's few files without a git process each time
        self.pinned: set[str] = set()  # paths a pull could not write here: their HEAD version stands
        self.last_commit_at: str | None = None
        # what a sync tool beside the daemon left: rclone's conflict files, a pulled version overwritten
        self.beside = Beside(config, repo, spill_dir(repo.git_dir), emit)
        # The daemon's: the next pass's fast-import is started right after a pass, so its start and its
        # reading of the repository are off the path from a write to its commit (commit/writer.py).
        self.ahead = False
        self._spare: FastImport | None = None

    def _writer(self) -> Writer:
        spare, self._spare = self._spare, None
        if spare is not None and not spare.ready(AHEAD_FOR):
            spare.close()  # gone (killed at a stop), or too old: this pass starts its own
            spare = None
        return Writer(self.repo, self.head, self.sizes.process_objects, spare)

    def _after(self, writer: Writer, failed: bool = False) -> None:
        """Keep a fast-import ready for the next pass: this pass's when it wrote nothing to it, else a new one
        unless the pass failed (never for one-off commands: `ahead` is the daemon's)."""
        spare = writer.unused()
        if not self.ahead:
            if spare is not None:
                spare.close()
            return
        if spare is None and not failed:
            try:
                spare = FastImport(self.repo).start()
            except GitError as exc:  # the next pass starts its own, as without this
                log.warning("fast_import_ahead_failed", error=exc.message)
        self._spare = spare

    def close(self) -> None:
        """End the fast-import kept ready (at stop); it wrote nothing."""
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.close()

    def refresh_head(self) -> None:
        """Re-read HEAD (after another process may have moved it)."""
        self.head = self.repo.head()

    def _head_stream(self, paths: list[str]) -> contextlib.AbstractContextManager[Iterator[tuple[str, TreeEntry]]]:
        assert self.head is not None
        found = self.lookup.entries(self.head, paths)
        if found is not None:
            return contextlib.nullcontext(iter(found))
        return self.repo.ls_tree_stream(self.head, paths)

    def commit(
        self,
        candidates: Iterable[str],
        first_event: float | None = None,
        op: str | None = None,
        progress: Callable[[int], None] | None = None,
        extra: Mapping[str, Any] | None = None,
        guarded: bool = True,
        trace: Trace | None = None,
    ) -> CommitResult:
        """Commit the current content of the candidate paths; no commit when nothing changed. `trace`: the
        batch's moments, marked as the steps end."""
        started = time.perf_counter()
        batch = str(uuid.uuid4())
        if op in (None, "reconcile") and self.head is not None:
            candidates, found = self.beside.look(candidates, self.head)
            op = "conflict" if found and op is None else op
        writer = self._writer()
        changes = ChangeSet()
        try:
            changes = collect(candidates, Pass(
                data_dir=self.repo.data_dir, pfilter=self.pfilter, head=self._head_stream if self.head else None,
                sink=writer.blob, spill_dir=spill_dir(self.repo.git_dir), limits=self.limits, progress=progress,
                on_change=self.held.committed, pinned=frozenset(self.pinned), in_memory=self.sizes.records_in_memory,
            ))
            mark(trace, "collected")
            self.held.note(changes.skipped, batch=batch)
            if guarded:
                self.holds.apply(changes, self.head, batch=batch)
            else:
                changes.renames = similar.pair_moves(self.repo, changes)
            result = self._write(writer, changes, batch, started, first_event, op, extra, trace)
        except BaseException:
            writer.abort()
            changes.close()
            self._after(writer, failed=True)
            raise
        self.held.announce(self.emit, batch=batch)
        self._after(writer)
        return result

    def delete_only(self, paths: Sequence[str], op: str) -> CommitResult:
        """A commit that only removes paths from the tree (the files may still be on disk)."""
        started = time.perf_counter()
        self.refresh_head()
        entries = self.repo.ls_tree(self.head, list(paths)) if paths else {}
        changes = ChangeSet(records=Spill(spill_dir(self.repo.git_dir), self.sizes.records_in_memory))
        for path, entry in sorted(entries.items()):
            assert changes.records is not None
            changes.records.append(Change(DELETED, path, entry.mode, entry.sha).encode())
            changes.deleted[path] = entry.sha
        writer = self._writer()
        try:
            result = self._write(writer, changes, str(uuid.uuid4()), started, None, op)
        except BaseException:
            writer.abort()
            self._after(writer, failed=True)
            raise
        self._after(writer)
        return result

    def _write(
        self, writer: Writer, changes: ChangeSet, batch: str, started: float, first_event: float | None,
        op: str | None, extra: Mapping[str, Any] | None = None, trace: Trace | None = None,
    ) -> CommitResult:
        """Write the changes as one commit, or as parts of at most max_batch_files paths; log it."""
        if changes.empty:
            writer.abort()
            if changes.records is not None:
                changes.records.close()
            return CommitResult(None, changes, batch, time.perf_counter() - started)
        most = self.config.max_batch_files
        count = parts.count(changes, most)
        old = self.head
        paths = parts.path_lists(changes) if self.emit is not events.nothing else None
        writer.plan(changes.size)
        summary = ""
        for number, part in enumerate(parts.split(changes, most), 1):
            details = {**(extra or {}), **({"part": f"{number}/{count}"} if count > 1 else {})}
            text = self._message(part, changes.renames, batch, first_event or time.time(), op, details)
            summary = summary or text.split("\n", 1)[0].partition(": ")[2]
            deletes = [c.path for c in part if c.kind == DELETED]
            modifies = [(c.mode, c.sha, c.path) for c in part if c.kind != DELETED]
            writer.commit(self.identity, text, deletes, modifies)
        mark(trace, "objects_written")
        sha = writer.finish()
        mark(trace, "ref_updated")
        if trace is not None:
            trace.note(fast_import_ahead=writer.ahead)
            if writer.usage:
                trace.note(fast_import_cpu_ms=round(sum(u.cpu_ns for u in writer.usage) / 1e6, 2),
                           fast_import_waited_ms=round(sum(u.waited_ns for u in writer.usage) / 1e6, 2))
        assert sha is not None
        self.head = sha
        self._track_lfs(changes)
        if changes.records is not None:
            changes.records.close()  # the stat hints stay, for the index
        self.last_commit_at = clock.iso(clock.now(), ms=True)
        seconds = time.perf_counter() - started
        self._logged(sha, changes, batch, op, seconds, count, summary)
        if paths is not None:
            self.emit(events.git_commit(batch=batch, sha=sha, old=old, op=op, paths=paths, commits=count))
        return CommitResult(sha, changes, batch, seconds)

    def _logged(self, sha: str, changes: ChangeSet, batch: str, op: str | None, seconds: float, count: int,
                summary: str) -> None:
        counts = changes.counts
        if changes.lfs:
            log.info("lfs_stored", paths=changes.lfs[:20], count=len(changes.lfs), batch=batch)
        if self.on_commit is not None:
            self.on_commit(op, counts.total, seconds)
        log.info(
            "git_commit", batch=batch, sha=sha, files=counts.total, added=counts.added, modified=counts.modified,
            deleted=counts.deleted, renamed=counts.renamed, bytes=changes.bytes_read, op=op,
            duration_ms=round(seconds * 1000, 1), summary=summary, **({"commits": count} if count > 1 else {}),
        )

    def _track_lfs(self, changes: ChangeSet) -> None:
        """Keep the list of LFS paths in HEAD, and git's attributes for them, in line with the commit."""
        if not self.lfs_paths and not changes.lfs:
            return
        was = {c.path for c in changes.every() if c.path in self.lfs_paths}
        was |= {p for p in changes.kept_deleted if p in self.lfs_paths}
        self.lfs_paths.update(was, changes.lfs)

    def _message(
        self, part: list[Change], renames: Mapping[str, str], batch: str, first_event: float, op: str | None,
        details: Mapping[str, Any] | None = None,
    ) -> str:
        counts = parts.counts(part, renames)
        meta = message.trailer_value(
            batch=batch, host=self.host, counts=counts, first_event=clock.iso(first_event, ms=True),
            bmmeta=self.bmmeta.read(), extra={**({"op": op} if op else {}), **(details or {})},
        )
        return message.build(message.subject(self._about(part, renames, op, details)), meta)

    def _about(self, part: list[Change], renames: Mapping[str, str], op: str | None,
               details: Mapping[str, Any] | None) -> message.About:
        """What the commit of `part` did, for its subject: moves paired as `parts.counts` pairs them."""
        pairs = parts.renamed_pairs(part, renames)
        moved = {p for pair in pairs for p in pair}
        saved = [c.path for c in part if c.kind != DELETED and c.path not in moved]
        deleted = sorted(c.path for c in part if c.kind == DELETED and c.path not in moved)
        to = None
        if op == "restore" and details and details.get("source"):
            when = self.repo.git("show", "-s", "--format=%ct", str(details["source"]), check=False).stdout
            to = time.strftime("%Y-%m-%d %H:%M", time.localtime(int(when))) if when.strip().isdigit() else None
        return message.About(saved=message.most_recent_first(self.repo.data_dir, saved), deleted=deleted,
                             renamed=pairs, op=op, path=str(details["path"]) if details and "path" in details
                             else None, to=to)
