"""Bringing the remote's commits into the repository and the data directory, never losing a local change.

Fast-forward when the local branch has nothing the remote lacks; otherwise a merge whose conflicts keep
the local version at its path and the remote's beside it as a conflict copy. Files are written before
the branch moves, so a crash in between leaves content the next reconcile commits, never a reverted
remote change. Whatever is written matches the new HEAD, so the watcher's events for it commit nothing.
"""

from __future__ import annotations

import hashlib
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from committer.commit import message
from committer.commit.step import Pipeline, save_lfs_paths
from committer.core import clock, fsio, logs
from committer.core.errors import CommitterError, ConfigError
from committer.core.settings import Settings
from committer.git import lfs, trees
from committer.git.checkout import write_entry
from committer.git.objects import MODE_EXEC, MODE_LINK, TreeEntry, blob_id
from committer.git.repo import GitRepo
from committer.policy import guard
from committer.sync.bootstrap import fetch_lfs_objects, fetch_remote_head
from committer.sync.refs import pushed_ref, record_pushed

log = logs.get("committer.pull")

MODE_GITLINK = "160000"
PULL_DELETE = "pull_max_delete"
CONFLICTS_KEPT = 50  # conflict copies listed in status, newest last

# Outcomes of one pull, as logged, counted and answered.
UP_TO_DATE, AHEAD, FAST_FORWARD, MERGE, HELD, REFUSED, NO_BRANCH = (
    "up_to_date", "ahead", "fast_forward", "merge", "held", "refused", "no_remote_branch",
)


@dataclass
class PullResult:
    """What one pull did: its outcome, the heads before and after, and the files it touched."""

    outcome: str
    remote: str | None = None
    old: str | None = None
    new: str | None = None
    written: int = 0
    deleted: int = 0
    conflicts: list[dict[str, str]] = field(default_factory=list)
    reason: str | None = None

    @property
    def sha(self) -> str | None:
        """The new head when the branch moved, else None."""
        return self.new if self.new != self.old else None

    def answer(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome, "remote": self.remote, "old": self.old, "new": self.new, "sha": self.sha,
            "written": self.written, "deleted": self.deleted, "conflicts": self.conflicts, "reason": self.reason,
        }


# -- the data directory -------------------------------------------------------------------------


def _disk(tree: fsio.Tree, path: str) -> tuple[str, bytes] | None:
    """("link", "file" or "exec", content) of a path in the data directory; None when absent (or behind a
    symlink: never followed)."""
    try:
        st = tree.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            return "link", tree.readlink(path)
        if stat.S_ISREG(st.st_mode):
            return ("exec" if st.st_mode & stat.S_IXUSR else "file"), tree.read(path)
    except OSError:
        return None
    return "other", b""


def _matches(disk: tuple[str, bytes] | None, entry: TreeEntry | None, blobs: Mapping[str, bytes]) -> bool:
    """Whether what is on disk is what `entry` describes (an LFS pointer matches its object)."""
    if entry is None or disk is None:
        return entry is None and disk is None
    kind, content = disk
    if kind != {MODE_LINK: "link", MODE_EXEC: "exec"}.get(entry.mode, "file"):
        return False
    if blob_id(content) == entry.sha:
        return True
    parsed = lfs.parse(blobs.get(entry.sha, b""))
    if parsed is None:
        return False
    oid, size = parsed
    return len(content) == size and hashlib.sha256(content).hexdigest() == oid


GROUP_BYTES = 16 << 20  # blob content read at once while a pull writes files (about 3x that in memory)


class _Blobs:
    """Blob contents for a pull: the small ones (where LFS pointers are) at once, the rest in groups."""

    def __init__(self, repo: GitRepo, shas: Iterable[str]) -> None:
        self.repo = repo
        self.sizes = trees.blob_sizes(repo, shas)
        self.small = repo.read_blobs(sorted(s for s, n in self.sizes.items() if n < lfs.POINTER_MAX))
        self._group: dict[str, bytes] = {}

    def load(self, shas: Iterable[str]) -> None:
        """Read these blobs (dropping the previous group)."""
        self._group = self.repo.read_blobs(sorted({s for s in shas if s not in self.small}))

    def __getitem__(self, sha: str) -> bytes:
        return self.small[sha] if sha in self.small else self._group[sha]

    def groups(self, items: list[_Item]) -> Iterator[list[_Item]]:
        """The items in order, in groups whose new content stays under GROUP_BYTES (or one item)."""
        group: list[_Item] = []
        size = 0
        for item in items:
            new = item[1][1]
            cost = self.sizes.get(new.sha, 0) if new is not None else 0
            if group and size + cost > GROUP_BYTES:
                yield group
                group, size = [], 0
            group.append(item)
            size += cost
        if group:
            yield group


_Item = tuple[str, tuple[TreeEntry | None, TreeEntry | None]]


def _order(item: _Item) -> tuple[int, str]:
    """Deletions first (a folder that becomes a file needs its files gone), then writes, by path."""
    return (0 if item[1][1] is None else 1, item[0])


def _apply(
    pipeline: Pipeline, changes: Mapping[str, tuple[TreeEntry | None, TreeEntry | None]], blobs: _Blobs,
    when: float, taken: set[str],
) -> tuple[int, int, list[dict[str, str]], set[str]]:
    """Write the changes into the data directory wherever the disk still holds the old version.

    A path changed here and not committed yet keeps its local version; the incoming one is written beside
    it as a conflict copy. Returns (written, deleted, conflicts, paths where the disk now differs from
    the new tree: they are committed on top). Nothing is written or deleted through a symlink.
    """
    with fsio.Tree(pipeline.repo.data_dir) as tree:
        return _apply_in(tree, pipeline, changes, blobs, when, taken)


def _apply_in(
    tree: fsio.Tree, pipeline: Pipeline, changes: Mapping[str, tuple[TreeEntry | None, TreeEntry | None]],
    blobs: _Blobs, when: float, taken: set[str],
) -> tuple[int, int, list[dict[str, str]], set[str]]:
    repo = pipeline.repo
    written = deleted = 0
    conflicts: list[dict[str, str]] = []
    local_wins: set[str] = set()
    small = blobs.small

    def is_taken(name: str) -> bool:
        return name in taken or tree.exists(name)

    def still(path: str, entry: TreeEntry | None) -> bool:
        return _matches(_disk(tree, path), entry, small)

    for group in blobs.groups(sorted(changes.items(), key=_order)):
        blobs.load(new.sha for _path, (_old, new) in group if new is not None and new.mode != MODE_GITLINK)
        for path, (old, new) in group:
            if not _safe(tree, path) or MODE_GITLINK in (getattr(old, "mode", ""), getattr(new, "mode", "")):
                log.warning("pull_path_skipped", path=path,
                            reason="outside the data directory, behind a symlink, .git, or a submodule")
                continue
            disk = _disk(tree, path)
            if _matches(disk, new, small):
                continue  # already as the new tree has it
            unchanged = _matches(disk, old, small)
            try:
                if unchanged and new is None:
                    tree.remove(path)
                    deleted += 1
                    continue
                # Checked again after the temporary file is written, just before the rename.
                if unchanged and new is not None and write_entry(
                    tree, repo.git_dir, path, new, blobs[new.sha], expect=lambda p=path, o=old: still(p, o)  # type: ignore[misc]
                ):
                    written += 1
                    continue
                local_wins.add(path)
                if new is not None:
                    copy = trees.conflict_name(path, repo.branch, when, is_taken)
                    taken.add(copy)
                    write_entry(tree, repo.git_dir, copy, new, blobs[new.sha])
                    local_wins.add(copy)
                    conflicts.append({"path": path, "copy": copy, "why": "changed here while pulling"})
            except fsio.LinkInPath as exc:
                log.warning("pull_path_skipped", path=path, reason=f"{exc.link} is a symbolic link here")
            except OSError as exc:
                raise CommitterError(f"pull: cannot write {path} into the data directory: {exc.strerror or exc}; "
                                     "nothing was moved, the next pull tries again") from None
    return written, deleted, conflicts, local_wins


def _safe(tree: fsio.Tree, path: str) -> bool:
    """A tree path that stays inside the data directory (no `..`, no `.git`, no symlinked parent)."""
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") or p.lower() == ".git" for p in parts):
        return False
    parent = fsio.split(path)[0]
    return not parent or tree.first_link(parent) is None


# -- one pull ------------------------------------------------------------------------------------


def apply_remote(pipeline: Pipeline, remote: str, *, allow_deletes: bool = False) -> PullResult:
    """Bring the fetched remote head into the branch and the data directory (the caller holds the lock)."""
    settings = pipeline.settings
    repo = pipeline.repo
    pipeline.refresh_head()
    local = pipeline.head
    pushed = repo.resolve(pushed_ref(settings.remote, repo.branch))
    result = PullResult(UP_TO_DATE, remote=remote, old=local, new=local)
    base = trees.merge_base(repo, local, remote) if local is not None else None
    if local is not None and base == remote:  # the remote's head is already in ours
        if pushed is None or (pushed != remote and trees.is_ancestor(repo, pushed, remote)):
            record_pushed(repo, settings.remote, remote, {}, "pull: the remote has it")
        result.outcome = UP_TO_DATE if remote == local else AHEAD
        return result
    refused = pipeline.pull_state.get("refused") or {}
    if refused.get("remote_head") == remote:
        return _refuse(result, str(refused.get("reason")))
    if pushed is not None and not trees.is_ancestor(repo, pushed, remote):
        return _refuse(result, f"the remote's {repo.branch} no longer contains {pushed[:12]}, which it had: "
                               "a forced update (history rewritten on the remote)")
    if local is not None and base is None:
        return _refuse(result, f"the remote's {repo.branch} shares no history with the local one")
    state = pipeline.data_dir_state() if local is not None else "ok"
    if state != "ok":
        raise CommitterError(f"the data directory {repo.data_dir} is {state}; "
                             "nothing is pulled into it until it is back")
    when = time.time()
    merging = local is not None and base != local
    if merging and not settings.pull_merge:
        return _refuse(result, "local commits not on the remote, and pull_merge is off: bring them together "
                               "by hand or turn pull_merge on")
    target_tree = f"{remote}^{{tree}}"
    copies: list[dict[str, str]] = []
    if merging:
        assert local is not None
        target_tree, copies = _merged_tree(repo, local, remote, when)
    changes = trees.diff_trees(repo, local, target_tree)
    # A folder the remote moved is renames, not deletions: only unpaired deletions count toward max_delete.
    moved = guard.pair_renames(
        {p: new.sha for p, (old, new) in changes.items() if old is None and new is not None},
        {p: old.sha for p, (old, new) in changes.items() if new is None and old is not None},
    )
    deletions = sorted(p for p, (_old, new) in changes.items() if new is None and p not in moved)
    if len(deletions) > settings.max_delete and not allow_deletes:
        held = {"reason": PULL_DELETE, "paths": deletions[:50], "count": len(deletions),
                "since": clock.iso(when, ms=True), "remote_head": remote}
        if (pipeline.pull_state.get("held") or {}).get("remote_head") != remote:
            log.warning("hold", reason=PULL_DELETE, count=len(deletions), paths=deletions[:10], remote_head=remote,
                        release="committer confirm-deletes")
            pipeline.pull_state["held"] = held
        result.outcome, result.reason = HELD, f"the pull would delete {len(deletions)} files (max_delete)"
        return result
    wanted = {e.sha for pair in changes.values() for e in pair if e is not None and e.mode != MODE_GITLINK}
    blobs = _Blobs(repo, wanted)
    pointers = _pointers({p: new for p, (_old, new) in changes.items() if new is not None}, blobs.small)
    fetch_lfs(pipeline.settings, repo, remote, pointers.values())
    taken = {c["copy"] for c in copies}
    written, deleted, late, local_wins = _apply(pipeline, changes, blobs, when, taken)
    new_head = remote if not merging else _merge_commit(pipeline, local, remote, target_tree, changes, copies, when)
    result.outcome = MERGE if merging else FAST_FORWARD
    repo.git("update-ref", "-m", f"committer: pull ({result.outcome})", repo.ref, new_head, local or "0" * 40)
    record_pushed(repo, settings.remote, remote, {}, "pull: fetched")
    pipeline.refresh_head()
    pipeline.update_lfs_paths(changes, pointers)
    _keep_ignored(pipeline, [p for p, (_old, new) in changes.items() if new is not None])
    pipeline.pull_state.pop("held", None)
    repo.sync_index()
    result.new, result.written, result.deleted = new_head, written, deleted
    result.conflicts = copies + late
    if local_wins:
        # Local edits made while the pull ran, and the remote's versions beside them: one more commit.
        pipeline.commit(sorted(local_wins), op="conflict", extra={"remote": remote})
        repo.sync_index()
        result.new = pipeline.head
    return result


def _keep_ignored(pipeline: Pipeline, arrived: Iterable[str]) -> None:
    """Remember the paths a pull brought in that the ignore rules exclude here: they are not untracked."""
    ignored = {p for p in arrived if pipeline.pfilter.ignored(p)}
    if ignored:
        kept = set(pipeline.pull_state.get("kept_ignored") or ()) | ignored
        pipeline.pull_state["kept_ignored"] = sorted(kept)
        log.info("pull_kept_ignored", paths=sorted(ignored)[:20], count=len(ignored),
                 why="they match the ignore rules here, but came from the remote: written and kept in history")


def _pointers(entries: Mapping[str, TreeEntry], blobs: Mapping[str, bytes]) -> dict[str, str]:
    """Path -> LFS oid of the entries whose blob is an LFS pointer."""
    found = {}
    for path, entry in entries.items():
        parsed = lfs.parse(blobs.get(entry.sha, b""))
        if parsed is not None:
            found[path] = parsed[0]
    return found


def fetch_lfs(settings: Settings, repo: GitRepo, rev: str, oids: Iterable[str]) -> None:
    """Download the LFS objects of `rev` when any of `oids` is missing; a failure leaves pointer files."""
    missing = [oid for oid in oids if not lfs.object_path(repo.git_dir, oid).is_file()]
    if not missing or not settings.remote:
        return
    if not lfs.available():
        log.warning("lfs_fetch_skipped", missing=len(missing), reason="git-lfs is not installed",
                    action="pointer files are written in place of those files")
        return
    try:
        fetch_lfs_objects(settings, repo, rev)
    except CommitterError as exc:
        log.warning("lfs_fetch_failed", missing=len(missing), error=exc.message,
                    action="pointer files are written where objects are missing")


def checkout_lfs(settings: Settings, repo: GitRepo, rev: str) -> int:
    """After a checkout of `rev` (a restore from the remote): put the real content where it holds pointers.

    Returns the number of files replaced; those without an object (download failed) stay pointers.
    """
    entries = trees.small_blobs(repo, rev, lfs.POINTER_MAX)
    blobs = repo.read_blobs(sorted({e.sha for e in entries.values()}))
    pointers = _pointers(entries, blobs)
    if not pointers:
        return 0
    fetch_lfs(settings, repo, rev, pointers.values())
    replaced = 0
    with fsio.Tree(repo.data_dir) as tree:
        for path, oid in sorted(pointers.items()):
            entry = entries[path]
            if lfs.object_path(repo.git_dir, oid).is_file() and _matches(_disk(tree, path), entry, {}):
                try:
                    replaced += write_entry(tree, repo.git_dir, path, entry, blobs[entry.sha],
                                            expect=lambda p=path, e=entry: _matches(_disk(tree, p), e, {}))  # type: ignore[misc]
                except fsio.LinkInPath as exc:
                    log.warning("lfs_checkout_skipped", path=path, reason=f"{exc.link} is a symbolic link here")
    save_lfs_paths(repo.git_dir, set(pointers))
    lfs.write_attributes(repo.git_dir, set(pointers))
    log.info("lfs_checked_out", files=replaced, pointers=len(pointers))
    return replaced


def _refuse(result: PullResult, reason: str) -> PullResult:
    result.outcome, result.reason = REFUSED, reason
    return result


def _merged_tree(repo: GitRepo, local: str, remote: str, when: float) -> tuple[str, list[dict[str, str]]]:
    """The merge of both sides; where they conflict the local version keeps the path, the remote's is a copy.

    A file that git moved out of a folder's way (a file on one side, a folder on the other) gets a
    conflict-copy name instead of git's `name~<commit>`. Refused when any new content would be lost.
    """
    tree, conflicted = trees.merge_trees(repo, local, remote)
    if not conflicted:
        return tree, []
    names = set(repo.ls_tree(local, None)) | set(repo.ls_tree(remote, None))

    def taken(name: str) -> bool:
        if name in names:
            return True
        with fsio.Tree(repo.data_dir) as tree:
            return tree.exists(name)

    overrides: dict[str, TreeEntry | None] = {}
    copies: list[dict[str, str]] = []
    for path, stages in sorted(conflicted.items()):
        moved = next(((path[: -len(sha) - 1], side) for sha, side in ((local, 2), (remote, 3))
                      if path.endswith(f"~{sha}")), None)
        if moved is not None:
            original, side = moved
            overrides[path] = None
            copy = trees.conflict_name(original, repo.branch if side == 3 else "local", when, taken)
            names.add(copy)
            overrides[copy] = stages[side]
            copies.append({"path": original, "copy": copy, "why": "a file on one side, a folder on the other"})
            continue
        mine, other = stages.get(2), stages.get(3)
        overrides[path] = mine
        if other is not None and other != mine:
            copy = trees.conflict_name(path, repo.branch, when, taken)
            names.add(copy)
            overrides[copy] = other
            copies.append({"path": path, "copy": copy, "why": "changed on both sides"})
    merged = trees.write_tree(repo, tree, overrides)
    # Each side's version of every conflicted path must be somewhere in the result.
    lost = trees.missing(repo, merged, {e.sha for stages in conflicted.values() for n, e in stages.items() if n > 1})
    if lost:
        raise CommitterError(f"the merge with the remote would lose {len(lost)} file version(s); nothing was "
                             "changed: merge by hand (see README, 'Pulling')")
    return merged, copies


def _merge_commit(
    pipeline: Pipeline, local: str | None, remote: str, tree: str,
    changes: Mapping[str, tuple[TreeEntry | None, TreeEntry | None]], copies: list[dict[str, str]], when: float,
) -> str:
    """A merge commit of both heads with the BM-Meta trailer ("op":"merge"); `changes`: local -> tree."""
    repo = pipeline.repo
    added = sum(1 for old, _new in changes.values() if old is None)
    deleted = sum(1 for _old, new in changes.values() if new is None)
    counts = message.Counts(added=added, modified=len(changes) - added - deleted, deleted=deleted, renamed=0)
    extra: dict[str, Any] = {"op": "merge", "remote": remote}
    if copies:
        extra["conflicts"] = len(copies)
    meta = message.trailer_value(batch=str(uuid.uuid4()), host=pipeline.host, counts=counts,
                                 first_event=clock.iso(when, ms=True), bmmeta=None, extra=extra)
    summary = f"merge the remote's {repo.branch} ({remote[:12]})"
    if copies:
        summary += f": {len(copies)} conflict cop{'y' if len(copies) == 1 else 'ies'}"
    text = message.build(summary, meta)
    parents = ["-p", local, "-p", remote] if local else ["-p", remote]
    name, email = pipeline.identity
    env = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": name,
           "GIT_COMMITTER_EMAIL": email}
    return repo.git("commit-tree", tree, *parents, input=text.encode(), env=env).stdout.decode().strip()


_FETCH_LOCK = threading.Lock()  # one fetch at a time: they write the same tracking ref


def fetch(settings: Settings, repo: GitRepo, cancelled: Callable[[], bool] | None = None) -> str | None:
    """Fetch the remote branch; its commit id, or None when the remote has no such branch."""
    if not settings.remote:
        raise ConfigError("remote", "no remote is configured; set --remote or COMMITTER_REMOTE")
    with _FETCH_LOCK:
        return fetch_remote_head(settings, repo, cancelled=cancelled)


def pull(pipeline: Pipeline, *, allow_deletes: bool = False, fetched: str | None = None) -> PullResult:
    """Fetch (unless a fetched head is given) and apply; logs git_pull, and git_conflict when there is one."""
    remote = fetched if fetched is not None else fetch(pipeline.settings, pipeline.repo)
    if remote is None:
        return PullResult(NO_BRANCH, old=pipeline.head, new=pipeline.head,
                          reason=f"the remote has no branch {pipeline.repo.branch!r}")
    result = apply_remote(pipeline, remote, allow_deletes=allow_deletes)
    record(pipeline, result)
    return result


def record(pipeline: Pipeline, result: PullResult) -> None:
    """Log the pull and keep what status shows: last pull, conflicts, a refused update."""
    state = pipeline.pull_state
    now = clock.iso(clock.now(), ms=True)
    state["last_fetch_at"] = now
    state["remote_head"] = result.remote
    if result.outcome in (FAST_FORWARD, MERGE):
        state["last_pull_at"] = now
    if result.outcome == REFUSED:
        known = state.get("refused") or {}
        same = known.get("remote_head") == result.remote
        state["refused"] = {"reason": result.reason, "remote_head": result.remote,
                            "at": known.get("at", now) if same else now}
        if not same:
            log.error("git_conflict", kind="refused", reason=result.reason, remote_head=result.remote,
                      head=result.old, action="nothing pulled; see README, 'Pulling'")
        return
    state.pop("refused", None)
    if result.conflicts:
        kept = list(state.get("conflicts") or [])
        kept += [{**c, "at": now, "remote_head": result.remote or ""} for c in result.conflicts]
        state["conflicts"] = kept[-CONFLICTS_KEPT:]
        for item in result.conflicts:
            log.warning("git_conflict", kind="conflict_copy", path=item["path"], copy=item["copy"],
                        why=item["why"], remote_head=result.remote)
    if result.outcome not in (UP_TO_DATE, AHEAD, NO_BRANCH):
        log.info("git_pull", outcome=result.outcome, old=result.old, new=result.new, remote_head=result.remote,
                 written=result.written, deleted=result.deleted, conflicts=len(result.conflicts))


def refuse_forced(pipeline: Pipeline, remote_head: str | None, source: str) -> None:
    """A push event that says forced: never applied, reported as git_conflict and in status."""
    reason = f"a forced update of the remote branch ({source}); nothing pulled"
    record(pipeline, PullResult(REFUSED, remote=remote_head, old=pipeline.head, new=pipeline.head, reason=reason))
