"""The commit step: candidate paths in, one exact commit out (or none when nothing changed)."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from committer import logs, message
from committer.changes import ChangeSet, collect
from committer.filters import BMMETA, PathFilter
from committer.gitrepo import FastImport, GitRepo, TreeEntry
from committer.settings import Settings

log = logs.get("committer.pipeline")


@dataclass(frozen=True)
class CommitResult:
    """What one pass produced: the new commit (None when nothing changed) and its changes."""

    sha: str | None
    changes: ChangeSet
    batch: str
    seconds: float


def iso_utc(epoch: float) -> str:
    """ISO 8601 in UTC with milliseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


class Pipeline:
    """Reads the data directory and writes commits into the repository."""

    def __init__(self, settings: Settings, repo: GitRepo, pfilter: PathFilter) -> None:
        self.settings = settings
        self.repo = repo
        self.pfilter = pfilter
        self.identity = (settings.author_name, settings.author_email)
        self.host = socket.gethostname()
        self.head: str | None = repo.head()
        self.last_commit_at: str | None = None
        self.held: dict[str, str] = {}
        self._warned: set[tuple[str, str]] = set()
        self._bmmeta_warned: tuple[int, int] | None = None

    def refresh_head(self) -> None:
        """Re-read HEAD (after another process may have moved it)."""
        self.head = self.repo.head()

    def _lookup(self, paths: Sequence[str] | None) -> Mapping[str, TreeEntry]:
        return self.repo.ls_tree(self.head, paths)

    def commit(
        self,
        candidates: Iterable[str],
        first_event: float | None = None,
        op: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> CommitResult:
        """Commit the current content of the candidate paths; no commit when nothing changed."""
        started = time.perf_counter()
        batch = str(uuid.uuid4())
        bound = log.bind(batch=batch)
        importer = FastImport(self.repo.git_dir)
        try:
            changes = collect(
                self.repo.data_dir, candidates, self.pfilter, self._lookup, importer.blob, progress
            )
            self._note_skipped(changes, bound)
            if changes.empty:
                importer.abort()
                return CommitResult(None, changes, batch, time.perf_counter() - started)
            text = self._message(changes, batch, first_event or time.time(), op)
            sha = importer.commit(
                self.repo.ref, self.head, self.identity, text, changes.deletes, changes.modifies
            )
        except BaseException:
            importer.abort()
            raise
        self.head = sha
        self.last_commit_at = iso_utc(time.time())
        seconds = time.perf_counter() - started
        counts = changes.counts
        bound.info(
            "git_commit",
            sha=sha,
            files=counts.total,
            added=counts.added,
            modified=counts.modified,
            deleted=counts.deleted,
            renamed=counts.renamed,
            bytes=changes.bytes_read,
            op=op,
            duration_ms=round(seconds * 1000, 1),
        )
        return CommitResult(sha, changes, batch, seconds)

    def _message(self, changes: ChangeSet, batch: str, first_event: float, op: str | None) -> str:
        extra = {"op": op} if op else None
        meta = message.trailer_value(
            batch=batch,
            host=self.host,
            counts=changes.counts,
            first_event=iso_utc(first_event),
            bmmeta=self._bmmeta(),
            extra=extra,
        )
        return message.build(message.summary(changes.counts, changes.paths), meta)

    def _bmmeta(self) -> Any:
        """The data directory's .bmmeta JSON, or None; invalid JSON is reported once per version."""
        path = self.repo.data_dir / BMMETA
        try:
            st = path.stat()
            raw = path.read_bytes()
        except OSError:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._bmmeta_warned:
                self._bmmeta_warned = stamp
                log.warning("bmmeta_invalid", path=str(path), error=str(exc))
            return None

    def _note_skipped(self, changes: ChangeSet, bound: structlog.typing.FilteringBoundLogger) -> None:
        for rel in changes.paths:
            self.held.pop(rel, None)
        for item in changes.skipped:
            self.held[item.path] = item.reason
            key = (item.path, item.reason)
            if key not in self._warned:
                self._warned.add(key)
                bound.warning("skip", path=item.path, reason=item.reason)

    def held_files(self) -> list[dict[str, str]]:
        """Files kept out of history, with the reason, for status."""
        return [{"path": p, "reason": r} for p, r in sorted(self.held.items())]

    def reconcile(self, op: str = "reconcile") -> CommitResult:
        """Commit whatever differs between the data directory and HEAD, then resync the index."""
        started = time.time()
        self.refresh_head()
        if self.head is None:
            candidates: Iterable[str] = [""]
        else:
            candidates = self.repo.changed_paths()
        self.held.clear()
        result = self.commit(candidates, first_event=started, op=op)
        self.repo.sync_index()
        return result
