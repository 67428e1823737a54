"""The data directory reached without ever following a symlink, and the one atomic write.

Every path below the data directory is opened relative to a descriptor of the directory itself
(core.beneath: `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` where the kernel has it, else one
`O_NOFOLLOW` open per component). A symlink on the way (`etc` replaced by a link to `/etc`) makes
the path unreachable (LinkInPath, a FileNotFoundError: for reading, the path is simply not there),
and a `..` never climbs out. Writes go the same way and rename a temporary file inside the already
opened parent directory, so a symlink swapped in between a check and the write cannot redirect it.
The data directory itself may be a symlink (to a mount): only what lies below it is never followed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from committer.core import beneath
from committer.core.beneath import LinkInPath as LinkInPath
from committer.core.beneath import split as split

_DIR, _FILE = beneath.DIR, beneath.FILE
_ROOT = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_CHUNK = 1 << 20


class Tree:
    """The data directory, opened once for a pass; paths are relative and `/`-separated ('' is the root)."""

    def __init__(self, root: Path | str) -> None:
        self.root = os.fspath(root)
        self.fd = os.open(self.root, _ROOT)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def first_link(self, rel: str) -> str | None:
        """The first prefix of `rel` (itself included) that is a symlink, or None."""
        return beneath.first_link(self.fd, rel)

    def open_dir(self, rel: str) -> int:
        """A descriptor of directory `rel`; LinkInPath when it or a parent is a symlink."""
        return beneath.open_beneath(self.fd, rel, _DIR)

    def open_file(self, rel: str) -> int:
        """A read-only descriptor of `rel`, which must not be a symlink (ELOOP) nor lie behind one."""
        return beneath.open_beneath(self.fd, rel, _FILE)

    def lstat(self, rel: str) -> os.stat_result:
        """The entry itself (a symlink is not followed); LinkInPath when a parent is a symlink."""
        parent, name = split(rel)
        if not name:
            return os.fstat(self.fd)
        fd = self.open_dir(parent)
        try:
            return os.stat(name, dir_fd=fd, follow_symlinks=False)
        finally:
            os.close(fd)

    def exists(self, rel: str) -> bool:
        """Whether the entry is there, below the root and reached without a symlink."""
        try:
            self.lstat(rel)
        except OSError:
            return False
        return True

    def readlink(self, rel: str) -> bytes:
        """The target text of the symlink `rel`."""
        parent, name = split(rel)
        fd = self.open_dir(parent)
        try:
            return os.readlink(os.fsencode(name), dir_fd=fd)
        finally:
            os.close(fd)

    def read(self, rel: str, limit: int | None = None) -> bytes:
        """The content of regular file `rel` (at most `limit` bytes); IsADirectoryError for anything else."""
        fd = self.open_file(rel)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise IsADirectoryError(errno.EISDIR, "not a regular file", rel)
            return read_all(fd, limit)
        finally:
            os.close(fd)

    def scandir(self, rel: str) -> Iterator[os.DirEntry[str]]:
        """The entries of directory `rel` (name only; their types without following links)."""
        fd = self.open_dir(rel)
        try:
            with os.scandir(fd) as entries:
                yield from entries
        finally:
            os.close(fd)

    def walk_files(self, rel: str, skip_dir: Callable[[str], bool] = lambda _rel: False) -> Iterator[str]:
        """Every file and symlink below directory `rel` (never through a symlink), as relative paths."""
        stack = [rel]
        while stack:
            directory = stack.pop()
            try:
                entries = list(self.scandir(directory))
            except OSError:
                continue
            for entry in entries:
                child = f"{directory}/{entry.name}" if directory else entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if not skip_dir(child):
                            stack.append(child)
                    elif entry.is_file(follow_symlinks=False) or entry.is_symlink():
                        yield child
                except OSError:
                    continue

    # -- writing -----------------------------------------------------------------------------------

    def make_dirs(self, rel: str) -> int:
        """A descriptor of directory `rel`, creating what is missing; LinkInPath when a component is a
        symlink, NotADirectoryError when one is a file."""
        parts = beneath.components(rel)

        def open_part(fd: int, index: int, part: str) -> int:
            try:
                return os.open(part, _DIR, dir_fd=fd)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                return os.open(part, _DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    done = "/".join(parts[: index + 1])
                    if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                        raise LinkInPath(rel, done) from None
                    raise NotADirectoryError(errno.ENOTDIR, "a file is in the way", done) from None
                raise

        return beneath.step_down(self.fd, parts, open_part)

    def write(
        self,
        rel: str,
        content: bytes | Path,
        mode: int = 0o644,
        *,
        link: bool = False,
        expect: Callable[[], bool] | None = None,
    ) -> bool:
        """Put `content` at `rel` atomically: a temporary file in the same (already opened) directory,
        then a rename. `link`: make a symlink whose target is `content`. `expect`, asked just before
        the rename, can refuse the replacement: then nothing is replaced and the answer is False.
        A directory in the way is an IsADirectoryError; a symlink on the way, LinkInPath."""
        parent, name = split(rel)
        if not name or name in (".", ".."):
            raise LinkInPath(rel, rel)
        fd = self.make_dirs(parent)
        tmp = f".#committer-{secrets.token_hex(6)}.tmp"
        try:
            try:
                if link:
                    assert isinstance(content, bytes)
                    os.symlink(content, os.fsencode(tmp), dir_fd=fd)
                else:
                    _write_file(fd, tmp, content, mode)
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    st = None
                if st is not None and stat.S_ISDIR(st.st_mode):
                    raise IsADirectoryError(errno.EISDIR, "a directory is in the way", rel)
                if expect is not None and not expect():
                    return False
                os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
                return True
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp, dir_fd=fd)
        finally:
            os.close(fd)

    def remove(self, rel: str) -> bool:
        """Delete file or symlink `rel`, then the directories it leaves empty (never the root).
        False when it was not there; LinkInPath when a parent is a symlink (nothing is deleted)."""
        parent, name = split(rel)
        fd = self.open_dir(parent)
        try:
            try:
                os.unlink(name, dir_fd=fd)
            except FileNotFoundError:
                return False
        finally:
            os.close(fd)
        while parent:
            above, name = split(parent)
            fd = self.open_dir(above)
            try:
                os.rmdir(name, dir_fd=fd)
            except OSError:
                break
            finally:
                os.close(fd)
            parent = above
        return True


def read_all(fd: int, limit: int | None = None) -> bytes:
    """Everything from the descriptor's offset to its end (or `limit` bytes)."""
    chunks = []
    left = limit if limit is not None else -1
    while left != 0:
        chunk = os.read(fd, _CHUNK if left < 0 else min(left, _CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        if left > 0:
            left -= len(chunk)
    return b"".join(chunks)


def read_beneath(root: Path, rel: str, limit: int | None = None) -> bytes | None:
    """A small file of the data directory (such as .bmignore), never through a symlink; None when absent,
    a symlink, or unreadable."""
    try:
        with Tree(root) as tree:
            return tree.read(rel, limit)
    except OSError:
        return None


def _write_file(dir_fd: int, name: str, content: bytes | Path, mode: int) -> None:
    _fill(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd),
          content, mode)


def _fill(fd: int, content: bytes | Path, mode: int) -> None:
    """Write content (bytes, or a file to copy) into a new file, set its mode, fsync it; closes fd."""
    try:
        if isinstance(content, Path):
            src = os.open(content, os.O_RDONLY | os.O_CLOEXEC)
            try:
                while chunk := os.read(src, _CHUNK):
                    _write(fd, chunk)
            finally:
                os.close(src)
        else:
            _write(fd, content)
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace a file of our own (in the git dir or the state dir) atomically and durably:
    a temporary file beside it, fsynced, then renamed over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        _fill(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode), data, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
