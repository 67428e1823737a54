"""Writing a pull's changes into the data directory where the disk still holds the old version; never
through a symlink, never over a local change (that one becomes a conflict copy)."""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from committer.commit import bisync
from committer.commit.committer import Committer
from committer.core import fsio, logs
from committer.core.errors import CommitterError
from committer.core.events import PathLists
from committer.git import lfs, trees
from committer.git.checkout import write_entry
from committer.git.objects import MODE_EXEC, MODE_GITLINK, MODE_LINK, TreeEntry, blob_id
from committer.git.repo import GitRepo
from committer.sync import frontmatter

log = logs.get(__name__)


def disk_entry(tree: fsio.Tree, path: str) -> tuple[str, bytes] | None:
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


def matches(disk: tuple[str, bytes] | None, entry: TreeEntry | None, blobs: Mapping[str, bytes]) -> bool:
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


class Blobs:
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


def write_changes(
    committer: Committer, changes: Mapping[str, tuple[TreeEntry | None, TreeEntry | None]], blobs: Blobs,
    when: float, taken: set[str], done: PathLists | None = None, unwritable: dict[str, str] | None = None,
    waiting: dict[str, str] | None = None,
) -> tuple[int, int, list[dict[str, str]], set[str]]:
    """Write the changes into the data directory wherever the disk still holds the old version.

    A path changed here and not committed yet keeps its local version; the incoming one is written beside
    it as a conflict copy. A path that cannot be written here (a name too long or invalid on this
    filesystem, a symlink on the way, a folder in the way) is skipped and named in `unwritable` with the
    reason: the others go on. Returns (written, deleted, conflicts, paths where the disk now differs from
    the new tree: they are committed on top). Nothing is written or deleted through a symlink. `done`, when
    given, lists the paths written (conflict copies included) and deleted.
    """
    with fsio.Tree(committer.repo.data_dir) as tree:
        return write_in(tree, committer, changes, blobs, when, taken, done or PathLists("written", "deleted"),
                        unwritable if unwritable is not None else {}, waiting)


def write_in(
    tree: fsio.Tree, committer: Committer, changes: Mapping[str, tuple[TreeEntry | None, TreeEntry | None]],
    blobs: Blobs, when: float, taken: set[str], done: PathLists, unwritable: dict[str, str] | None = None,
    waiting: dict[str, str] | None = None,
) -> tuple[int, int, list[dict[str, str]], set[str]]:
    """write_changes in an open tree; `waiting` gets, for each LFS file left as it was, the blob id the
    disk holds for it ('' when absent): the next pull replaces only that."""
    waiting = waiting if waiting is not None else {}
    repo = committer.repo
    written = deleted = 0
    conflicts: list[dict[str, str]] = []
    local_wins: set[str] = set()
    small = blobs.small
    cannot = unwritable if unwritable is not None else {}

    def is_taken(name: str) -> bool:
        return name in taken or tree.exists(name)

    def still(path: str, entry: TreeEntry | None) -> bool:
        return matches(disk_entry(tree, path), entry, small)

    def skip(path: str, reason: str) -> None:
        cannot[path] = reason
        log.warning("pull_path_unwritable", path=path, reason=reason,
                    action="kept in git, not written here; listed in status as unwritable_paths")

    for group in blobs.groups(sorted(changes.items(), key=_order)):
        blobs.load(new.sha for _path, (_old, new) in group if new is not None and new.mode != MODE_GITLINK)
        for path, (old, new) in group:
            if outside(path) or MODE_GITLINK in (getattr(old, "mode", ""), getattr(new, "mode", "")):
                log.warning("pull_path_skipped", path=path, reason="outside the data directory, .git, or a submodule")
                continue
            link = _link_above(tree, path)
            if link is not None:
                skip(path, f"{link} is a symbolic link here")
                continue
            disk = disk_entry(tree, path)
            if matches(disk, new, small):
                continue  # already as the new tree has it
            unchanged = matches(disk, old, small)
            target = path
            if new is not None and lfs_missing(repo.git_dir, small.get(new.sha, b"")):
                # A pointer never replaces content: the file keeps what it has (or is not written), and
                # the object is fetched again at the next pull.
                if disk is None or unchanged:
                    skip(path, LFS_MISSING)
                    waiting[path] = blob_id(disk[1]) if disk is not None else ""
                else:
                    local_wins.add(path)
                    conflicts.append({"path": path, "copy": "", "why": "changed here; the remote's version is "
                                      "an LFS object that could not be downloaded (it stays in history)"})
                continue
            try:
                if unchanged and new is None:
                    tree.remove(path)
                    deleted += 1
                    done.add("deleted", path)
                    continue
                # Checked again after the temporary file is written, just before the rename.
                if unchanged and new is not None and write_entry(
                    tree, repo.git_dir, path, new, blobs[new.sha], expect=lambda p=path, o=old: still(p, o)  # type: ignore[misc]
                ):
                    written += 1
                    done.add("written", path)
                    # a write over it soon after, without this change, is a conflict (commit/pulled.py)
                    committer.step.beside.pulled.wrote(path, old.sha if old is not None else None, new.sha)
                    continue
                if not _renamed_away(tree, committer, path, disk):
                    local_wins.add(path)
                if new is None:
                    conflicts.append({"path": path, "copy": "", "why": "deleted on the remote, changed here"})
                else:
                    target = copy = trees.conflict_name(path, repo.branch, when, is_taken)
                    taken.add(copy)
                    content = blobs[new.sha]
                    if committer.settings.conflict_frontmatter:
                        content = frontmatter.distinct(path, copy, content)
                    write_entry(tree, repo.git_dir, copy, new, content)
                    done.add("written", copy)
                    local_wins.add(copy)
                    conflicts.append({"path": path, "copy": copy, "why": "changed here while pulling"})
            except fsio.LinkInPath as exc:
                skip(target, f"{exc.link} is a symbolic link here")
            except CommitterError as exc:
                skip(target, exc.message)
            except OSError as exc:
                deleting = unchanged and new is None
                skip(target, f"cannot {'delete' if deleting else 'write'} it here: {exc.strerror or exc}")
                if deleting and disk is not None:
                    waiting[path] = blob_id(disk[1])  # deleted later only while it still holds this
    _behind_links(tree, changes, local_wins, cannot, skip)
    return written, deleted, conflicts, local_wins


def _renamed_away(tree: fsio.Tree, committer: Committer, path: str, disk: tuple[str, bytes] | None) -> bool:
    """rclone bisync renamed the note to its conflict files (`n.md..path1`): its absence is no deletion to
    commit; the fold puts the note back (commit/bisync.py)."""
    return path in committer.step.beside.folding or (disk is None and bisync.has_files(tree, path))


def _behind_links(
    tree: fsio.Tree, changes: Mapping[str, tuple[TreeEntry | None, TreeEntry | None]], local_wins: set[str],
    cannot: Mapping[str, str], skip: Callable[[str, str], None],
) -> None:
    """A folder swapped for a symlink while the pull ran: what was written there is not in the data directory
    any more; those paths are unwritable too, never half-applied (each checked once per folder)."""
    seen: dict[str, str | None] = {}
    for path, (_old, new) in changes.items():
        if new is None or path in local_wins or path in cannot or outside(path):
            continue
        parent = fsio.split(path)[0]
        if parent and parent not in seen:
            seen[parent] = tree.first_link(parent)
        link = seen.get(parent) if parent else None
        if link is not None:
            skip(path, f"{link} became a symbolic link while the pull ran")


LFS_MISSING = "its LFS object could not be downloaded; the file keeps what it had, and the next pull tries again"


def lfs_missing(git_dir: Path, blob: bytes) -> bool:
    """The blob is an LFS pointer whose object is not in the local store."""
    parsed = lfs.parse(blob) if lfs.is_pointer(blob) else None
    return parsed is not None and not lfs.object_path(git_dir, parsed[0]).is_file()


def _link_above(tree: fsio.Tree, path: str) -> str | None:
    parent = fsio.split(path)[0]
    return tree.first_link(parent) if parent else None


def outside(path: str) -> bool:
    """A tree path that would leave the data directory (`..`, an absolute path) or go into `.git`."""
    parts = path.split("/")
    return path.startswith("/") or any(p in ("", ".", "..") or p.lower() == ".git" for p in parts)


def safe(tree: fsio.Tree, path: str) -> bool:
    """A tree path that stays inside the data directory (no `..`, no `.git`, no symlinked parent)."""
    return not outside(path) and _link_above(tree, path) is None
