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

from committer import gitindex
from committer.filters import PathFilter, is_nested_repo
from committer.gitrepo import TreeEntry
from committer.message import Counts

BlobSink = Callable[[bytes], str]
HeadLookup = Callable[[Sequence[str] | None], Mapping[str, TreeEntry]]
LfsStore = Callable[[int, int], bytes]
SecretFinder = Callable[[bytes], "str | None"]

MODE_FILE, MODE_EXEC, MODE_LINK = "100644", "100755", "120000"


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
        """Parts of at most `most` paths each, in path order (one commit each)."""
        paths = self.paths
        if len(paths) <= most:
            return [self]
        by_path = {m[2]: m for m in self.modifies}
        lfs, modified = set(self.lfs), set(self.modified)
        parts = []
        for start in range(0, len(paths), most):
            chunk = paths[start : start + most]
            parts.append(ChangeSet(
                modifies=[by_path[p] for p in chunk if p in by_path],
                added={p: self.added[p] for p in chunk if p in self.added},
                modified=[p for p in chunk if p in modified],
                deleted={p: self.deleted[p] for p in chunk if p in self.deleted},
                lfs=[p for p in chunk if p in lfs],
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
    """The state of one pass over the candidates."""

    def __init__(self, data_dir: Path, pfilter: PathFilter) -> None:
        self.data_dir = data_dir
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
                found = is_nested_repo(os.path.join(self.data_dir, parent))
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
        full = os.path.join(self.data_dir, rel) if rel else str(self.data_dir)
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            self.roots.add(rel)
            return
        except OSError as exc:
            self.skip(rel, f"cannot stat: {exc.strerror}")
            return
        if stat.S_ISDIR(st.st_mode):
            if rel and self.pfilter.ignored(rel, is_dir=True):
                return
            if rel and is_nested_repo(full):
                self.skip(rel, "nested git repository")
                return
            self.roots.add(rel)
            self.walk(rel, full)
        elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
            self.roots.add(rel)
            self.files[rel] = None
        else:
            self.skip(rel, "not a regular file, directory or symlink")

    def walk(self, rel: str, full: str) -> None:
        stack = [(rel, full)]
        while stack:
            prefix, directory = stack.pop()
            try:
                entries = list(os.scandir(directory))
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
                    if is_nested_repo(entry.path):
                        self.skip(child, "nested git repository")
                    else:
                        stack.append((child, entry.path))
                elif is_file:
                    self.files[child] = None
                else:
                    self.skip(child, "not a regular file, directory or symlink")


class Held(Exception):
    """A file that must stay out of this commit, with the reason."""


def _read(
    full: str, limits: Limits, plain: str | None = None
) -> tuple[str, bytes, bool, os.stat_result | None]:
    """(mode, blob content, stored through LFS, stat of a file) of a file or symlink, never following a link.

    `plain`: HEAD's plain blob id for this path; a large file with exactly that content stays a plain blob.
    """
    try:
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        return MODE_LINK, os.fsencode(os.readlink(full)), False, None  # O_NOFOLLOW refused a symlink
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(full)
        mode = MODE_EXEC if st.st_mode & stat.S_IXUSR else MODE_FILE
        if limits.lfs_threshold and st.st_size >= limits.lfs_threshold:
            if plain is not None and st.st_size <= (limits.max_file_size or st.st_size):
                data = _read_all(fd)
                if blob_id(data) == plain:
                    return mode, data, False, st
                os.lseek(fd, 0, os.SEEK_SET)
            if limits.lfs_store is None:
                raise Held(f"{_mb(st.st_size)} is at or above lfs_threshold and {limits.lfs_missing_reason}")
            return mode, limits.lfs_store(fd, st.st_size), True, st
        if limits.max_file_size and st.st_size > limits.max_file_size:
            raise Held(f"{_mb(st.st_size)} is above max_file_size ({_mb(limits.max_file_size)})")
        data = _read_all(fd)
    finally:
        os.close(fd)
    if limits.find_secret is not None:
        kind = limits.find_secret(data)
        if kind is not None:
            raise Held(f"looks like it contains a secret ({kind})")
    return mode, data, False, st


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


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
    Paths that cannot be read are skipped and never deleted from history.
    """
    scan = _Scan(data_dir, pfilter)
    for rel in sorted(set(candidates)):
        scan.candidate(rel)
    roots = sorted(scan.roots)
    entries = head(None if "" in scan.roots else roots) if roots else {}

    limits = limits or Limits()
    result = ChangeSet(skipped=scan.skipped)
    seen: set[str] = set()
    # A whole-tree pass hands the stat data it saw to the index written after the commit.
    hints: dict[str, bytes] | None = {} if "" in scan.roots else None
    fresh_after = time.time_ns() - gitindex.RACY_NS
    for rel in scan.files:
        full = os.path.join(data_dir, rel)
        try:
            known = entries.get(rel)
            plain = known.sha if known is not None and not limits.is_lfs(rel) else None
            mode, data, through_lfs, st = _read(full, limits, plain)
        except (FileNotFoundError, NotADirectoryError):
            continue  # vanished since the event: a deletion if history has it
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
