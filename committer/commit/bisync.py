"""rclone bisync's conflict files, recognised and folded back into committer's own form.

On a conflict, rclone 1.60 renames `n.md` to `n.md..path1` and `n.md..path2` on both sides; newer versions
make `n.md.conflict1`, `n.md.conflict2` (or `n.conflict1.md` with `--suffix-keep-extension`), keeping the
winner at `n.md` when `--conflict-resolve` names one. Left alone, the note leaves its path on the remote and
both versions lose their `.md` ending. Folding puts the newest version (by modification time, which rclone
carries across) back at `n.md` and each other one beside it as `n (conflict from bisync, <time>).md`, on
disk, so the commit of the same batch holds the whole fold.

Only renames and hard links are used: no byte is written or deleted, except a copy whose content is the
very content kept at the note's path (committed in the same commit). A file changed less than SETTLED
seconds ago (rclone may still be writing it;
half the debounce when that is shorter) is not touched: the batch after its last write folds it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from committer.core import fsio, logs
from committer.git import trees

log = logs.get(__name__)

FOLD, KEEP = "fold", "keep"
SETTLED = 0.5  # seconds a conflict file must have been left alone (half the batch's debounce when shorter)
LABEL = "bisync"  # the copies are `n (conflict from bisync, <time>).md`

_PATHS = re.compile(r"^(?P<orig>.+)\.\.path[12]$", re.S)  # rclone 1.60: n.md..path1
_NUMBERED = re.compile(r"^(?P<orig>.+)\.conflict\d+$", re.S)  # newer rclone: n.md.conflict1
_KEEP_EXT = re.compile(r"^(?P<stem>.+)\.conflict\d+(?P<ext>\.[^.]+)$", re.S)  # --suffix-keep-extension


def original(name: str) -> tuple[str, bool] | None:
    """The name a bisync conflict file stands for, and whether its form is unmistakable (rclone 1.60's
    `..path1`); None for any other name. A `.conflictN` name counts only where the note is known."""
    found = _PATHS.match(name)
    if found:
        return found["orig"], True
    found = _NUMBERED.match(name)
    if found:
        return found["orig"], False
    found = _KEEP_EXT.match(name)
    if found:
        return found["stem"] + found["ext"], False
    return None


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


@dataclass
class Group:
    """One note's conflict: its path, the conflict files beside it, and whether the note is on disk."""

    path: str
    members: list[str]
    present: bool


def find(tree: fsio.Tree, candidates: Iterable[str], known: Callable[[list[str]], set[str]]) -> list[Group]:
    """The conflicts the candidate paths belong to, each with every conflict file of its note on disk.
    `known(paths)`: those of the paths that are in HEAD (a `.conflictN` name counts only for a note that is
    in HEAD or on disk, or has two such files)."""
    wanted: dict[str, bool] = {}
    gone: list[str] = []
    for path in candidates:
        folder, name = fsio.split(path)
        found = original(name)
        if found is not None and found[0] not in (".", ".."):
            note = _join(folder, found[0])
            wanted[note] = wanted.get(note, False) or found[1]
        elif found is None and path not in wanted and not _exists(tree, path):
            gone.append(path)
    # A note gone from its path while rclone's conflict files of it are on disk (their creation may come in a
    # later batch than the note's going): the same conflict, never a deletion to commit.
    noted: dict[str, set[str]] = {}  # folder: the notes its conflict files name (each folder read once)
    for path in gone:
        folder, name = fsio.split(path)
        if folder not in noted:
            noted[folder] = _noted(tree, folder)
        if name in noted[folder]:
            wanted[path] = True
    if not wanted:
        return []
    in_head = known(sorted(wanted))
    groups = []
    for note, sure in sorted(wanted.items()):
        members, fuzzy = _members(tree, note)
        present = _regular(tree, note)
        if not members or not (sure or note in in_head or present or fuzzy > 1):
            continue
        groups.append(Group(note, sorted(members), present))
    return groups


def _members(tree: fsio.Tree, note: str) -> tuple[list[str], int]:
    """The conflict files of `note` on disk (plain files only), and how many have a `.conflictN` name."""
    folder, base = fsio.split(note)
    members: list[str] = []
    fuzzy = 0
    with contextlib.suppress(OSError):
        for entry in tree.scandir(folder):
            found = original(entry.name)
            if found is not None and found[0] == base and entry.is_file(follow_symlinks=False):
                members.append(_join(folder, entry.name))
                fuzzy += not found[1]
    return members, fuzzy


def _noted(tree: fsio.Tree, folder: str) -> set[str]:
    """The names of the notes that rclone's conflict files in `folder` (plain files) stand beside."""
    names: set[str] = set()
    with contextlib.suppress(OSError):
        for entry in tree.scandir(folder):
            found = original(entry.name)
            if found is not None and entry.is_file(follow_symlinks=False):
                names.add(found[0])
    return names


def has_files(tree: fsio.Tree, note: str) -> bool:
    """Whether rclone's conflict files of `note` are still on disk."""
    return bool(_members(tree, note)[0])


def _exists(tree: fsio.Tree, path: str) -> bool:
    try:
        tree.lstat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # not known to be gone
    return True


def _regular(tree: fsio.Tree, path: str) -> bool:
    try:
        return stat.S_ISREG(tree.lstat(path).st_mode)
    except OSError:
        return False


@dataclass(frozen=True)
class Folded:
    """What one fold did: the note, the path each conflict file ended at ('' when dropped as a duplicate of
    the note's content), and the copies made."""

    path: str
    moved: dict[str, str]
    copies: list[str]


def fold(tree: fsio.Tree, group: Group, when: float, taken: Callable[[str], bool],
         now: Callable[[], float] = time.time, settled: float = SETTLED) -> Folded | None:
    """Put the newest version at the note's path and the others beside it as conflict copies; None (nothing
    done) while a member is still being written or is not a plain file."""
    names = ([group.path] if group.present else []) + group.members
    stats: dict[str, os.stat_result] = {}
    for name in names:
        try:
            st = tree.lstat(name)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or now() - st.st_ctime < settled:
            log.info("bisync_conflict_waiting", path=group.path, file=name, why="changed a moment ago or not a file")
            return None
        stats[name] = st
    # The newest wins; on a tie the note's own path stays, then the first conflict file.
    winner = max(names, key=lambda n: (stats[n].st_mtime_ns, n == group.path, -names.index(n)))
    kept = tree.read(winner)
    moved: dict[str, str] = {}
    copies: list[str] = []
    fd = tree.open_dir(fsio.split(group.path)[0])
    try:
        for name in names:
            if name == winner:
                continue
            same = stats[name].st_size == len(kept) and tree.read(name) == kept
            if same:  # the same bytes stay at the note's path, in this commit
                os.unlink(fsio.split(name)[1], dir_fd=fd)
                moved[name] = ""
                continue
            copy = trees.conflict_name(group.path, LABEL, when, lambda c: taken(c) or tree.exists(c))
            _move(fd, name, copy)
            moved[name] = copy
            copies.append(copy)
        if winner != group.path:
            _move(fd, winner, group.path)
            moved[winner] = group.path
    finally:
        os.close(fd)
    return Folded(group.path, moved, copies)


def _move(fd: int, old: str, new: str) -> None:
    """Rename within one folder, never over an existing name (a hard link, then the old name goes)."""
    source, target = fsio.split(old)[1], fsio.split(new)[1]
    try:
        os.link(source, target, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK):
            raise
        with contextlib.suppress(FileNotFoundError):  # a filesystem without hard links: check, then rename
            os.stat(target, dir_fd=fd, follow_symlinks=False)
            raise FileExistsError(errno.EEXIST, "already there", new) from None
        os.rename(source, target, src_dir_fd=fd, dst_dir_fd=fd)
        return
    os.unlink(source, dir_fd=fd)
