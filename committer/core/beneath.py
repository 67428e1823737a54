"""Opening a path below a directory descriptor without ever following a symlink or climbing out.

With `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` where the kernel has it (Linux 5.6+, reached
through libc's syscall() as Python has no binding), else one `O_NOFOLLOW` open per component. A
symlink on the way makes the path unreachable: LinkInPath, a FileNotFoundError naming the link.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
Frame = tuple[int, str, Iterator[T]]  # an open directory, its path, the entries still to visit

_SYS_OPENAT2 = 437  # the same number on every architecture (the unified table since Linux 5.1)
_RESOLVE_NO_SYMLINKS, _RESOLVE_BENEATH = 0x04, 0x08
DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class _OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))


class _Kernel:
    """openat2 through libc's syscall(); off for the process once the kernel or a seccomp filter refuses it."""

    def __init__(self) -> None:
        self.syscall: Callable[..., int] | None = None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            func = libc.syscall
            func.restype = ctypes.c_long
            self.syscall = func
        except (OSError, AttributeError):
            self.syscall = None

    def openat2(self, dir_fd: int, rel: str, flags: int) -> int | None:
        """The descriptor, or None when openat2 cannot be used here (then walk the components)."""
        call = self.syscall
        if call is None:
            return None
        how = _OpenHow(flags, 0, _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS)
        path = os.fsencode(rel)
        for _ in range(8):
            fd = call(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dir_fd), ctypes.c_char_p(path),
                      ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
            if fd >= 0:
                return int(fd)
            code = ctypes.get_errno()
            if code == errno.EAGAIN:  # a rename raced the lookup: the kernel asks to try again
                continue
            if code in (errno.ENOSYS, errno.EPERM, errno.EINVAL, errno.E2BIG):
                self.syscall = None  # an old kernel, or a seccomp filter without openat2
                return None
            raise OSError(code, os.strerror(code), rel)
        raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), rel)


_kernel = _Kernel()


class LinkInPath(FileNotFoundError):
    """A component of the path is a symlink (or the path climbs out with `..`): it is not below the root."""

    def __init__(self, rel: str, link: str) -> None:
        super().__init__(errno.ENOENT, f"{link} is a symbolic link", rel)
        self.rel = rel
        self.link = link


def split(rel: str) -> tuple[str, str]:
    """(parent, name) of a relative path; the parent of a top-level name is ''."""
    parent, _, name = rel.rpartition("/")
    return parent, name


def components(rel: str) -> list[str]:
    """The names along a relative path; LinkInPath for an absolute one or one with `..`."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if ".." in parts or rel.startswith("/"):
        raise LinkInPath(rel, rel)
    return parts


def open_beneath(root_fd: int, rel: str, flags: int) -> int:
    """A descriptor of `rel` below root_fd opened with `flags`; LinkInPath when a component is a symlink."""
    parts = components(rel)
    if not parts:
        return os.dup(root_fd) if flags & os.O_DIRECTORY else os.open(".", flags, dir_fd=root_fd)
    try:
        fd = _kernel.openat2(root_fd, "/".join(parts), flags)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EXDEV, errno.ENOTDIR):
            _explain(root_fd, parts, exc)
        raise
    return fd if fd is not None else _walk(root_fd, parts, flags)


def _walk(root_fd: int, parts: list[str], flags: int) -> int:
    """One O_NOFOLLOW open per component, for kernels without openat2."""

    def open_part(fd: int, index: int, part: str) -> int:
        try:
            return os.open(part, flags if index == len(parts) - 1 else DIR, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                _explain(root_fd, parts, exc)
            raise

    return step_down(root_fd, parts, open_part)


def step_down(root_fd: int, parts: list[str], open_part: Callable[[int, int, str], int]) -> int:
    """Open the components one at a time, each in the last: open_part(directory descriptor, index,
    name) returns the next descriptor. The last one is returned; every other is closed, also on error."""
    fd = os.dup(root_fd)
    try:
        for index, part in enumerate(parts):
            nfd = open_part(fd, index, part)
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def _explain(root_fd: int, parts: list[str], exc: OSError) -> None:
    """Raise LinkInPath naming the first symlink among the components (the last one included);
    return when there is none (the error stands as it is)."""
    link = first_link(root_fd, "/".join(parts))
    if link is not None:
        raise LinkInPath("/".join(parts), link) from None
    if exc.errno == errno.EXDEV:
        raise LinkInPath("/".join(parts), "/".join(parts)) from None


def first_link(root_fd: int, rel: str) -> str | None:
    """The first prefix of `rel` (itself included) that is a symlink, or None."""
    fd = os.dup(root_fd)
    try:
        parts = components(rel)
        for index, part in enumerate(parts):
            prefix = "/".join(parts[: index + 1])
            try:
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except OSError:
                return None
            if stat.S_ISLNK(st.st_mode):
                return prefix
            if not stat.S_ISDIR(st.st_mode) or index == len(parts) - 1:
                return None
            try:
                nfd = os.open(part, DIR, dir_fd=fd)
            except OSError:
                return None
            os.close(fd)
            fd = nfd
        return None
    finally:
        os.close(fd)



def depth_first(first: Frame[T], enter: Callable[[int, str, T], Frame[T] | None]) -> Iterator[tuple[int, str, T]]:
    """Visit a tree of open directories depth first, from `first`. For each entry, enter(directory
    descriptor, directory path, entry) opens the entry's own frame to descend into, or returns None:
    then the entry is yielded with its directory's descriptor (valid until the next step). Every
    descriptor on the stack, the first one's included, is closed when the walk ends or is abandoned."""
    stack = [first]
    try:
        while stack:
            fd, rel, pending = stack[-1]
            item = next(pending, None)
            if item is None:
                os.close(fd)
                stack.pop()
                continue
            frame = enter(fd, rel, item)
            if frame is None:
                yield fd, rel, item
            else:
                stack.append(frame)
    finally:
        for fd, _rel, _pending in stack:
            os.close(fd)
