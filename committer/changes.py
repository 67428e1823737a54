"""Turn candidate paths into exact changes against HEAD by reading the data directory."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from committer import fsio, gitindex
from committer.filters import PathFilter
from committer.gitrepo import TreeEntry
from committer.message import Counts

BlobSink = Callable[[bytes], str]
HeadLookup = Callable[[Sequence[str] | None], Mapping[str, TreeEntry]]
LfsStore = Callable[[int, int], bytes]
SecretFinder = Callable[[bytes], "str | None"]

MODE_FILE, MODE_EXEC, MODE_LINK = "100644", "100755", "120000"
SPECIAL = "not a regular file, directory or symlink (a FIFO, socket or device)"
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class Skipped:
    """A path left as it is in history, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Limits:
    """What may go in by size and content; the defaults let everything through."""

    lfs_threshold: int = 0
    max_file_size: int = 0
    lfs_store: LfsStore | None = None
    find_secret: SecretFinder | None = None
    lfs_missing_reason: str = "git-lfs is not installed"
    # Whether HEAD stores this path through LFS: a file at or above lfs_threshold that HEAD holds as a
    # plain blob (it came in through a pull) stays plain while its content is unchanged.
    is_lfs: Callable[[str], bool] = lambda _path: False


@dataclass
class ChangeSet:
    """What one commit will do: deletions, additions and modifications, and what was skipped."""

    modifies: list[tuple[str, str, str]] = field(default_factory=list)
    added: dict[str, str] = field(default_factory=dict)
    modified: list[str] = field(default_factory=list)
    deleted: dict[str, str] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    lfs: list[str] = field(default_factory=list)
    bytes_read: int = 0
    # Index entries' stat data of a whole-tree read (committer.gitindex), for the index written after it.
    stat_hints: dict[str, bytes] | None = None
    # Moves: deleted path -> added path with the same content (paired before the deletion guard counts).
    renames: dict[str, str] = field(default_factory=dict)

    @property
    def deletes(self) -> list[str]:
        return sorted(self.deleted)

    @property
    def paths(self) -> list[str]:
        return sorted([*self.added, *self.modified, *self.deleted])

    @property
    def counts(self) -> Counts:
        return _count(self.added, len(self.modified), self.deleted)

    @property
    def empty(self) -> bool:
        return not self.deleted and not self.modifies

    def split(self, most: int) -> list[ChangeSet]:
        """Parts of at most `most` changed paths each, in path order (one commit each).

        Moves carry no new content: both sides of every rename go into the first part and do not count
        toward `most`, so a moved folder is one commit whatever its size.
        """
        moved = {*self.renames, *self.renames.values()}
        rest = [p for p in self.paths if p not in moved]
        if len(rest) <= most:
            return [self]
        chunks = [rest[start : start + most] for start in range(0, len(rest), most)]
        chunks[0] = sorted([*moved, *chunks[0]])
        by_path = {m[2]: m for m in self.modifies}
        lfs, modified = set(self.lfs), set(self.modified)
        parts: list[ChangeSet] = []
        for chunk in chunks:
            parts.append(ChangeSet(
                modifies=[by_path[p] for p in chunk if p in by_path],
                added={p: self.added[p] for p in chunk if p in self.added},
                modified=[p for p in chunk if p in modified],
                deleted={p: self.deleted[p] for p in chunk if p in self.deleted},
                lfs=[p for p in chunk if p in lfs],
                renames=self.renames if not parts else {},
            ))
        return parts

    def keep_deletions(self, allowed: frozenset[str]) -> None:
        """Drop every deletion not in `allowed` (the guard holds them)."""
        self.deleted = {p: sha for p, sha in self.deleted.items() if p in allowed}


def blob_id(data: bytes) -> str:
    """The id git gives a blob with this content."""
    digest = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
    digest.update(data)
    return digest.hexdigest()


def _under(path: str, roots: set[str]) -> bool:
    if "" in roots or path in roots:
        return True
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        if path in roots:
            return True
    return False


class _Scan:
    """The state of one pass over the candidates; every path is reached below the data directory's
    descriptor without following a symlink (committer.fsio)."""

    def __init__(self, tree: fsio.Tree, pfilter: PathFilter) -> None:
        self.tree = tree
        self.pfilter = pfilter
        self.files: dict[str, None] = {}
        self.roots: set[str] = set()
        self._nested: dict[str, bool] = {}
        self.keep: set[str] = set()
        self.skipped: list[Skipped] = []

    def skip(self, rel: str, reason: str) -> None:
        if rel not in self.keep:
            self.skipped.append(Skipped(rel, reason))
            self.keep.add(rel)

    def inside_nested_repo(self, rel: str) -> str | None:
        """The nearest directory above `rel` that is a nested repository, if any."""
        parent = rel
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            found = self._nested.get(parent)
            if found is None:
                found = self.tree.exists(f"{parent}/.git")
                self._nested[parent] = found
            if found:
                return parent
        return None

    def candidate(self, rel: str) -> None:
        if rel and self.pfilter.ignored(rel):
            return
        nested = self.inside_nested_repo(rel)
        if nested is not None:
            self.skip(nested, "nested git repository")
            return
        try:
            st = self.tree.lstat(rel)
        except (FileNotFoundError, NotADirectoryError):
            self.roots.add(rel)  # gone, or behind a symlink now: whatever history has there is deleted
            return
        except OSError as exc:
            self.skip(rel, f"cannot stat: {exc.strerror}")
            return
        if stat.S_ISDIR(st.st_mode):
            if rel and self.pfilter.ignored(rel, is_dir=True):
                return
            if rel and self.tree.exists(f"{rel}/.git"):
                self.skip(rel, "nested git repository")
                return
            self.roots.add(rel)
            self.walk(rel)
        elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
            self.roots.add(rel)
            self.files[rel] = None
        else:
            self.skip(rel, SPECIAL)

    def walk(self, rel: str) -> None:
        stack = [rel]
        while stack:
            prefix = stack.pop()
            try:
                entries = list(self.tree.scandir(prefix))
            except FileNotFoundError:
                continue  # gone, or replaced by a symlink, since it was listed: a later event says which
            except OSError as exc:
                self.skip(prefix, f"cannot list directory: {exc.strerror}")
                continue
            for entry in entries:
                child = f"{prefix}/{entry.name}" if prefix else entry.name
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                    is_file = entry.is_file(follow_symlinks=False) or entry.is_symlink()
                except OSError as exc:
                    self.skip(child, f"cannot stat: {exc.strerror}")
                    continue
                if self.pfilter.ignored(child, is_dir=is_dir):
                    continue
                if is_dir:
                    if self.tree.exists(f"{child}/.git"):
                        self.skip(child, "nested git repository")
                    else:
                        stack.append(child)
                elif is_file:
                    self.files[child] = None
                else:
                    self.skip(child, SPECIAL)


class Held(Exception):
    """A file that must stay out of this commit, with the reason."""


class _Reader:
    """Reads the files of one pass, keeping the descriptor of the directory read last (files come
    grouped by directory), so a file costs one open relative to it."""

    def __init__(self, tree: fsio.Tree) -> None:
        self.tree = tree
        self._dir = ""
        self._fd = -1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _parent(self, parent: str) -> int:
        if self._fd < 0 or parent != self._dir:
            self.close()
            self._fd = self.tree.open_dir(parent)
            self._dir = parent
        return self._fd

    def read(
        self, rel: str, limits: Limits, plain: str | None = None
    ) -> tuple[str, bytes, bool, os.stat_result | None]:
        """(mode, blob content, stored through LFS, stat of a file) of a file or symlink, never following
        a link: a symlink is read as its target text, a path behind a symlinked parent is not there.

        `plain`: HEAD's plain blob id for this path; a large file with exactly that content stays a plain blob.
        """
        parent, name = fsio.split(rel)
        dir_fd = self._parent(parent)
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            # O_NOFOLLOW refused a symlink: its target text is the blob
            return MODE_LINK, os.readlink(os.fsencode(name), dir_fd=dir_fd), False, None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise IsADirectoryError(rel)
            mode = MODE_EXEC if st.st_mode & stat.S_IXUSR else MODE_FILE
            if limits.lfs_threshold and st.st_size >= limits.lfs_threshold:
                if plain is not None and st.st_size <= (limits.max_file_size or st.st_size):
                    data = fsio.read_all(fd)
                    if blob_id(data) == plain:
                        return mode, data, False, st
                    os.lseek(fd, 0, os.SEEK_SET)
                if limits.lfs_store is None:
                    raise Held(f"{_mb(st.st_size)} is at or above lfs_threshold and {limits.lfs_missing_reason}")
                return mode, limits.lfs_store(fd, st.st_size), True, st
            if limits.max_file_size and st.st_size > limits.max_file_size:
                raise Held(f"{_mb(st.st_size)} is above max_file_size ({_mb(limits.max_file_size)})")
            data = fsio.read_all(fd)
        finally:
            os.close(fd)
        if limits.find_secret is not None:
            kind = limits.find_secret(data)
            if kind is not None:
                raise Held(f"looks like it contains a secret ({kind})")
        return mode, data, False, st


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def collect(
    data_dir: Path,
    candidates: Iterable[str],
    pfilter: PathFilter,
    head: HeadLookup,
    sink: BlobSink,
    progress: Callable[[int], None] | None = None,
    limits: Limits | None = None,
) -> ChangeSet:
    """Compare candidate paths (files or directories; '' is the whole tree) with HEAD.

    Changed content is handed to `sink` as it is read, so only one file is in memory at a time.
    Paths that cannot be read are skipped and never deleted from history. Nothing is read through a
    symlink: a directory replaced by a link is committed as that link, and what was under it is deleted.
    """
    try:
        tree = fsio.Tree(data_dir)
    except (FileNotFoundError, NotADirectoryError):
        # No data directory: everything is gone (the mass-deletion guard holds such a batch).
        wanted = set(candidates)
        entries = head(None if "" in wanted else sorted(wanted)) if wanted else {}
        return ChangeSet(deleted={p: e.sha for p, e in entries.items() if _under(p, wanted)})
    with tree:
        reader = _Reader(tree)
        try:
            return _collect(tree, reader, candidates, pfilter, head, sink, progress, limits or Limits())
        finally:
            reader.close()


def _collect(
    tree: fsio.Tree,
    reader: _Reader,
    candidates: Iterable[str],
    pfilter: PathFilter,
    head: HeadLookup,
    sink: BlobSink,
    progress: Callable[[int], None] | None,
    limits: Limits,
) -> ChangeSet:
    scan = _Scan(tree, pfilter)
    for rel in sorted(set(candidates)):
        scan.candidate(rel)
    roots = sorted(scan.roots)
    entries = head(None if "" in scan.roots else roots) if roots else {}

    result = ChangeSet(skipped=scan.skipped)
    seen: set[str] = set()
    # A whole-tree pass hands the stat data it saw to the index written after the commit.
    hints: dict[str, bytes] | None = {} if "" in scan.roots else None
    fresh_after = time.time_ns() - gitindex.RACY_NS
    for rel in sorted(scan.files, key=_by_directory):
        try:
            known = entries.get(rel)
            plain = known.sha if known is not None and not limits.is_lfs(rel) else None
            mode, data, through_lfs, st = reader.read(rel, limits, plain)
        except (FileNotFoundError, NotADirectoryError):
            continue  # vanished since the event, or behind a symlink now: a deletion if history has it
        except Held as held:
            scan.skip(rel, str(held))
            continue
        except OSError as exc:
            scan.skip(rel, f"cannot read: {exc.strerror or exc}")
            continue
        seen.add(rel)
        result.bytes_read += len(data)
        if progress is not None:
            progress(len(data))
        sha = blob_id(data)
        if (hints is not None and st is not None and len(hints) < gitindex.MAX_HINTS
                and max(st.st_mtime_ns, st.st_ctime_ns) < fresh_after):
            hints[rel] = gitindex.hint(st, mode, sha)
        old = entries.get(rel)
        if old is not None and old.sha == sha and old.mode == mode:
            continue
        result.modifies.append((mode, sink(data), rel))
        if through_lfs:
            result.lfs.append(rel)
        if old is None:
            result.added[rel] = sha
        else:
            result.modified.append(rel)

    for rel, entry in entries.items():
        if rel in seen or _under(rel, scan.keep) or not _under(rel, scan.roots):
            continue
        result.deleted[rel] = entry.sha
    result.stat_hints = hints or None
    return result


def _by_directory(rel: str) -> tuple[str, str]:
    """Files of one directory together, so each directory is opened once."""
    parent, _, name = rel.rpartition("/")
    return parent, name


def _count(added: Mapping[str, str], modified: int, deleted: Mapping[str, str]) -> Counts:
    """Pair deletions with additions of the same content: those are renames."""
    gone_by_sha: dict[str, int] = {}
    for sha in deleted.values():
        gone_by_sha[sha] = gone_by_sha.get(sha, 0) + 1
    renamed = 0
    for sha in added.values():
        if gone_by_sha.get(sha, 0) > 0:
            gone_by_sha[sha] -= 1
            renamed += 1
    return Counts(
        added=len(added) - renamed,
        modified=modified,
        deleted=len(deleted) - renamed,
        renamed=renamed,
    )
