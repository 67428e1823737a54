"""The commit step: candidate paths in, one exact commit out (or none when nothing changed)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from committer.commit import message
from committer.commit.collect import (
    ADDED,
    DELETED,
    MODIFIED,
    Change,
    ChangeSet,
    Limits,
    Pass,
    collect,
    count_renames,
    stale_paths,
)
from committer.commit.message import Counts
from committer.commit.writer import Writer
from committer.core import clock, fsio, logs
from committer.core.records import Spill
from committer.core.settings import Settings
from committer.git import index as gitindex
from committer.git import lfs
from committer.git.layout import state_dir
from committer.git.objects import MODE_FILE, TreeEntry
from committer.git.repo import GitRepo
from committer.policy import guard, secrets
from committer.policy.filters import BMMETA, PathFilter
from committer.policy.guard import Hold

log = logs.get("committer.pipeline")
# A .bmmeta larger than this goes into no trailer (it describes who made a change, not the change).
BMMETA_MAX = 1 << 20


@dataclass(frozen=True)
class CommitResult:
    """What one pass produced: the new commit (None when nothing changed) and its changes."""

    sha: str | None
    changes: ChangeSet
    batch: str
    seconds: float


def _lfs_list(git_dir: Path) -> Path:
    return state_dir(git_dir) / "lfs-paths"


def load_lfs_paths(git_dir: Path) -> set[str]:
    """The paths stored through LFS in HEAD, as the last commit left them."""
    try:
        raw = _lfs_list(git_dir).read_bytes()
    except OSError:
        return set()
    return {os.fsdecode(p) for p in raw.split(b"\0") if p}


def save_lfs_paths(git_dir: Path, paths: set[str]) -> None:
    target = _lfs_list(git_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(b"".join(os.fsencode(p) + b"\0" for p in sorted(paths)))
    os.replace(tmp, target)


def make_limits(settings: Settings, repo: GitRepo) -> Limits:
    """Size and content rules: LFS when git-lfs is there, the size holds otherwise, secret scanning."""
    store = None
    if settings.lfs_threshold and lfs.available():
        git_dir = repo.git_dir

        def store(fd: int, size: int) -> bytes:
            return lfs.store(git_dir, fd, size)

    return Limits(
        lfs_threshold=settings.lfs_threshold,
        max_file_size=settings.max_file_size,
        lfs_store=store,
        find_secret=secrets.find_secret,
    )


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def spill_dir(git_dir: Path) -> Path:
    """Where the record lists of a large pass go (unlinked files: nothing is left behind)."""
    return state_dir(git_dir) / "tmp"


def _parts(changes: ChangeSet, most: int) -> Iterator[list[Change]]:
    """The changes in commits of at most `most` paths each, in path order. Moves carry no new content: both
    sides of every rename go into the first part and do not count, so a moved folder is one commit."""
    moved = {*changes.renames, *changes.renames.values()}
    part = [c for c in changes.changes() if c.path in moved]
    part += [Change(DELETED, p, MODE_FILE, sha) for p, sha in sorted(changes.kept_deleted.items())]
    size = 0
    for change in changes.changes():
        if change.path in moved:
            continue
        if size >= most:
            yield sorted(part, key=lambda c: os.fsencode(c.path))
            part, size = [], 0
        part.append(change)
        size += 1
    if part:
        yield sorted(part, key=lambda c: os.fsencode(c.path))


def part_counts(part: list[Change]) -> Counts:
    """Added, modified, deleted and renamed paths of one commit (a deletion and an addition of the same
    content are a rename)."""
    added = {c.path: c.sha for c in part if c.kind == ADDED}
    deleted = {c.path: c.sha for c in part if c.kind == DELETED}
    renamed = count_renames(added, deleted)
    modified = sum(1 for c in part if c.kind == MODIFIED)
    return Counts(added=len(added) - renamed, modified=modified, deleted=len(deleted) - renamed, renamed=renamed)


class Pipeline:
    """Reads the data directory and writes commits into the repository."""

    def __init__(
        self, settings: Settings, repo: GitRepo, pfilter: PathFilter, hold: Hold | None = None
    ) -> None:
        self.settings = settings
        self.repo = repo
        self.pfilter = pfilter
        self.limits = make_limits(settings, repo)
        self.identity = (settings.author_name, settings.author_email)
        self.host = socket.gethostname()
        self.head: str | None = repo.head()
        self.last_commit_at: str | None = None
        self.held: dict[str, str] = {}
        self.hold = hold
        self.pull_state: dict[str, Any] = {}  # what the pull side keeps for status (committer.pull)
        self.on_commit: Callable[[str | None, int, float], None] | None = None
        self.lfs_paths = load_lfs_paths(repo.git_dir)
        self.limits = dataclasses.replace(self.limits, is_lfs=lambda path: path in self.lfs_paths)
        self._warned: set[tuple[str, str]] = set()
        self._bmmeta_warned: int | None = None

    def refresh_head(self) -> None:
        """Re-read HEAD (after another process may have moved it)."""
        self.head = self.repo.head()

    def _head_stream(self, paths: list[str]) -> contextlib.AbstractContextManager[Iterator[tuple[str, TreeEntry]]]:
        assert self.head is not None
        return self.repo.ls_tree_stream(self.head, paths)

    def commit(
        self,
        candidates: Iterable[str],
        first_event: float | None = None,
        op: str | None = None,
        progress: Callable[[int], None] | None = None,
        extra: Mapping[str, Any] | None = None,
        guarded: bool = True,
    ) -> CommitResult:
        """Commit the current content of the candidate paths; no commit when nothing changed."""
        started = time.perf_counter()
        batch = str(uuid.uuid4())
        bound = log.bind(batch=batch)
        writer = Writer(self.repo, self.head)
        changes = ChangeSet()
        try:
            changes = collect(candidates, Pass(
                data_dir=self.repo.data_dir, pfilter=self.pfilter, head=self._head_stream if self.head else None,
                sink=writer.blob, spill_dir=spill_dir(self.repo.git_dir), limits=self.limits, progress=progress,
                on_change=self._unheld,
            ))
            self._note_skipped(changes, bound)
            if guarded:
                self._guard(changes, bound)
            else:
                changes.renames = guard.pair_renames(changes.additions(set(changes.deleted.values())), changes.deleted)
            return self._write(writer, changes, batch, started, first_event, op, extra)
        except BaseException:
            writer.abort()
            changes.close()
            raise

    def _write(
        self,
        writer: Writer,
        changes: ChangeSet,
        batch: str,
        started: float,
        first_event: float | None,
        op: str | None,
        extra: Mapping[str, Any] | None = None,
    ) -> CommitResult:
        """Write the changes as one commit, or as parts of at most max_batch_files paths; log it."""
        if changes.empty:
            writer.abort()
            if changes.records is not None:
                changes.records.close()
            return CommitResult(None, changes, batch, time.perf_counter() - started)
        most = self.settings.max_batch_files
        total = changes.added + changes.modified + len(changes.deleted) + len(changes.kept_deleted)
        count = max(1, -(-(total - 2 * len(changes.renames)) // most))  # moves ride along in the first
        writer.plan(total)
        for number, part in enumerate(_parts(changes, most), 1):
            details = {**(extra or {}), **({"part": f"{number}/{count}"} if count > 1 else {})}
            text = self._message(part, batch, first_event or time.time(), op, details)
            deletes = [c.path for c in part if c.kind == DELETED]
            modifies = [(c.mode, c.sha, c.path) for c in part if c.kind != DELETED]
            writer.commit(self.identity, text, deletes, modifies)
        sha = writer.finish()
        assert sha is not None
        self.head = sha
        self._track_lfs(changes)
        if changes.records is not None:
            changes.records.close()  # the stat hints stay, for the index
        self.last_commit_at = clock.iso(clock.now(), ms=True)
        seconds = time.perf_counter() - started
        counts = changes.counts
        bound = log.bind(batch=batch)
        if changes.lfs:
            bound.info("lfs_stored", paths=changes.lfs[:20], count=len(changes.lfs))
        if self.on_commit is not None:
            self.on_commit(op, counts.total, seconds)
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
            **({"commits": count} if count > 1 else {}),
        )
        return CommitResult(sha, changes, batch, seconds)

    def _unheld(self, rel: str) -> None:
        """A path that goes into this commit is no longer a held file."""
        self.held.pop(rel, None)

    def _track_lfs(self, changes: ChangeSet) -> None:
        """Keep the list of LFS paths in HEAD, and git's attributes for them, in line with the commit."""
        if not self.lfs_paths and not changes.lfs:
            return
        was = {c.path for c in changes.changes() if c.path in self.lfs_paths} | {
            p for p in changes.kept_deleted if p in self.lfs_paths}
        self.update_lfs_paths(was, changes.lfs)

    def update_lfs_paths(self, changed: Iterable[str], now_lfs: Iterable[str]) -> None:
        """Of the `changed` paths, exactly `now_lfs` are LFS pointers in HEAD now (after a commit or a pull)."""
        paths = set(self.lfs_paths)
        paths.difference_update(changed)
        paths.update(now_lfs)
        if paths != self.lfs_paths:
            self.lfs_paths = paths
            save_lfs_paths(self.repo.git_dir, paths)
            # git status must clean LFS files to their pointers, or it sees them modified forever
            lfs.write_attributes(self.repo.git_dir, paths)

    # -- the mass-deletion guard ----------------------------------------------------------------

    def data_dir_state(self) -> str:
        """ok, empty (nothing but ignored entries: an unmounted bucket looks like this) or missing."""
        try:
            with os.scandir(self.repo.data_dir) as entries:
                for entry in entries:
                    if not self.pfilter.ignored(entry.name, is_dir=entry.is_dir(follow_symlinks=False)):
                        return "ok"
        except FileNotFoundError:
            return "missing"
        except OSError:
            return "missing"
        return "empty"

    def _guard(self, changes: ChangeSet, bound: structlog.typing.FilteringBoundLogger) -> None:
        """Pair moves first (they pass), then hold unpaired deletions past max_delete."""
        renames: dict[str, str] = {}
        if changes.deleted:
            renames = guard.pair_renames(changes.additions(set(changes.deleted.values())), changes.deleted)
            unpaired = [p for p in changes.deleted if p not in renames]
            allowed: frozenset[str] = frozenset()
            if unpaired:
                decision = guard.decide(
                    unpaired,
                    max_delete=self.settings.max_delete,
                    data_dir_state=self.data_dir_state(),
                    hold=self.hold,
                    now=clock.iso(clock.now(), ms=True),
                )
                allowed = decision.allowed
                self.hold = decision.hold
                if decision.new_hold and self.hold is not None:
                    bound.warning(
                        "hold", reason=self.hold.reason, count=len(self.hold.paths),
                        paths=sorted(self.hold.paths)[:10], release="committer confirm-deletes",
                    )
            changes.keep_deletions(allowed | frozenset(renames))
        renames.update(self._moved_out_of_hold(changes, renames))
        changes.renames = renames
        self.release_hold()

    def _moved_out_of_hold(self, changes: ChangeSet, renames: Mapping[str, str]) -> dict[str, str]:
        """Additions whose content a held deletion had: the other half of a move that arrived in an earlier
        batch. Those held paths leave the hold and are deleted in this commit, as renames."""
        hold = self.hold
        if hold is None or not changes.added:
            return {}
        held = self.repo.ls_tree(self.head, sorted(hold.paths))
        with self._gone() as still_gone:
            gone = {p: e.sha for p, e in held.items() if p in hold.paths and still_gone(p)}
        targets = set(renames.values())
        added = {p: sha for p, sha in changes.additions(set(gone.values())).items() if p not in targets}
        pairs = guard.pair_renames(added, gone)
        if pairs:
            changes.kept_deleted.update({p: gone[p] for p in pairs})
            self.hold = guard.release(hold, lambda p: p not in pairs)
            log.info("hold_moves", count=len(pairs), paths=sorted(pairs)[:10],
                     why="their content came back under other names: committed as renames")
        return pairs

    @contextlib.contextmanager
    def _gone(self) -> Iterator[Callable[[str], bool]]:
        """Whether a held deletion still stands: the file is not there (reached without a symlink) or
        is ignored now. With the data directory away, every deletion stands."""
        try:
            tree = fsio.Tree(self.repo.data_dir)
        except OSError:
            yield lambda _rel: True
            return
        with tree:
            yield lambda rel: self.pfilter.ignored(rel) or not tree.exists(rel)

    def release_hold(self) -> None:
        """Drop held deletions whose files came back; log when the whole hold is gone."""
        before = self.hold
        with self._gone() as still_gone:
            self.hold = guard.release(before, still_gone)
        if before is not None and self.hold is None:
            log.info("hold_released", reason=before.reason, why="the files came back")

    def confirm_deletes(self) -> CommitResult:
        """Commit the held deletions (those still standing); no commit when nothing is held."""
        hold = self.hold
        if hold is None:
            return CommitResult(None, ChangeSet(), "", 0.0)
        with self._gone() as still_gone:
            gone = [p for p in sorted(hold.paths) if still_gone(p)]
        result = self._delete_only(gone, op="confirm-deletes")
        log.info("hold_confirmed", reason=hold.reason, count=result.changes.counts.deleted, sha=result.sha)
        self.hold = None
        return result

    def untrack_ignored(self) -> CommitResult | None:
        """Tracked files that the ignore rules now exclude leave the tree (not the disk), audited.

        Looked for once per set of rules (when they change, and once after the repository is opened:
        the rules may have changed while no daemon ran), by reading HEAD's entries as a stream."""
        rules = self.pfilter.fingerprint()
        if self.head is None or rules == _read_text(self._rules_checked):
            return None
        held = self.hold.paths if self.hold else frozenset()
        # Files a pull brought in stay, though ignored here: untracking them would delete them on the remote.
        pulled = set(self.pull_state.get("kept_ignored") or ())
        with self.repo.ls_tree_stream(self.head, [""]) as entries:
            paths = [p for p, _e in entries if self.pfilter.ignored(p) and p not in held and p not in pulled]
        result = None
        if paths:
            decision = guard.decide(
                paths, max_delete=self.settings.max_delete, data_dir_state="ok", hold=self.hold,
                now=clock.iso(clock.now(), ms=True), reason=guard.IGNORE_RULES,
            )
            self.hold = decision.hold
            if decision.new_hold and self.hold is not None:
                log.warning("hold", reason=self.hold.reason, count=len(self.hold.paths),
                            paths=sorted(self.hold.paths)[:10], release="committer confirm-deletes")
            if decision.allowed:
                result = self._delete_only(sorted(decision.allowed), op="untrack")
        self._rules_checked.parent.mkdir(parents=True, exist_ok=True)
        fsio.write_atomic(self._rules_checked, rules.encode())
        return result

    @property
    def _rules_checked(self) -> Path:
        """The ignore rules tracked files were last checked against (their fingerprint)."""
        return state_dir(self.repo.git_dir) / "rules-checked"

    def _delete_only(self, paths: Sequence[str], op: str) -> CommitResult:
        """A commit that only removes paths from the tree (the files may still be on disk)."""
        started = time.perf_counter()
        self.refresh_head()
        entries = self.repo.ls_tree(self.head, list(paths)) if paths else {}
        changes = ChangeSet(records=Spill(spill_dir(self.repo.git_dir)))
        for path, entry in sorted(entries.items()):
            assert changes.records is not None
            changes.records.append(Change(DELETED, path, entry.mode, entry.sha).encode())
            changes.deleted[path] = entry.sha
        return self._write(Writer(self.repo, self.head), changes, str(uuid.uuid4()), started, None, op)

    def _message(
        self, part: list[Change], batch: str, first_event: float, op: str | None,
        details: Mapping[str, Any] | None = None,
    ) -> str:
        counts = part_counts(part)
        extra = {**({"op": op} if op else {}), **(details or {})}
        meta = message.trailer_value(
            batch=batch,
            host=self.host,
            counts=counts,
            first_event=clock.iso(first_event, ms=True),
            bmmeta=self._bmmeta(),
            extra=extra,
        )
        return message.build(message.summary(counts, [c.path for c in part]), meta)

    def _bmmeta(self) -> Any:
        """The data directory's .bmmeta JSON, or None; invalid JSON is reported once per version.

        Read without following a symlink: a .bmmeta linked to a file outside is not read.
        """
        raw = fsio.read_beneath(self.repo.data_dir, BMMETA, BMMETA_MAX + 1)
        if raw is None:
            return None
        try:
            if len(raw) > BMMETA_MAX:
                raise ValueError(f"larger than {BMMETA_MAX} bytes")
            return json.loads(raw)
        except ValueError as exc:
            stamp = hash(raw)
            if stamp != self._bmmeta_warned:
                self._bmmeta_warned = stamp
                log.warning("bmmeta_invalid", path=BMMETA, error=str(exc))
            return None

    def _note_skipped(self, changes: ChangeSet, bound: structlog.typing.FilteringBoundLogger) -> None:
        for item in changes.skipped:
            self.held[item.path] = item.reason
            key = (item.path, item.reason)
            if key not in self._warned:
                self._warned.add(key)
                bound.warning("skip", path=item.path, reason=item.reason)

    def keep_held(self, items: object) -> None:
        """Take the held files a state file listed (`held_files`): looked at again by the next reconcile."""
        if isinstance(items, list):
            self.held = {str(i["path"]): str(i.get("reason", "")) for i in items if isinstance(i, dict) and "path" in i}

    def held_files(self) -> list[dict[str, str]]:
        """Files kept out of history, with the reason, for status."""
        return [{"path": p, "reason": r} for p, r in sorted(self.held.items())]

    def _stale(self) -> set[str]:
        """Paths where the data directory may differ from HEAD: from the index's stat data, as a stream;
        from `git status` when the index is not one committer can read (git wrote it in another format)."""
        assert self.head is not None
        with gitindex.Index(self.repo.git_dir / "index") as index:
            if index.usable:
                with self.repo.ls_tree_stream(self.head, [""]) as head:
                    return stale_paths(self.repo.data_dir, self.pfilter, index, head)
        return self.repo.changed_paths()

    def reconcile(self, op: str = "reconcile") -> CommitResult:
        """Commit whatever differs between the data directory and HEAD, then resync the index.

        The first commit of a repository is labelled op "init" whatever `op` says.
        """
        started = time.time()
        self.refresh_head()
        op = "init" if self.head is None else op
        if self.head is None:
            candidates: Iterable[str] = [""]
        else:
            # What was held is looked at again, so it stays listed while it is there and leaves the list
            # when it is gone.
            candidates = self._stale() | set(self.held)
        self.held.clear()
        result = self.commit(candidates, first_event=started, op=op)
        self.repo.sync_index(result.changes.hints())
        result.changes.close()
        if self.untrack_ignored() is not None:
            self.repo.sync_index()
        return result
