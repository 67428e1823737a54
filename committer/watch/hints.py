"""Which folders may hold a changed file, for the poll observer on local filesystems: one inotify watch per
folder, read once at the start of each scan, lets a scan skip the lstat() of every file of a folder
that had no event, whose own mtime and inode are unchanged (watch.classify).

Why a folder's mtime is not enough: adding, removing or renaming an entry changes it, rewriting a file
in place does not (only the file's own mtime and ctime change). The kernel tells every watch on a folder
when one of its files is written, truncated, has its times, mode or owner changed, or an entry comes or
goes, whoever does it on this host: any process, container or mount of the same filesystem. Two kinds of
change raise no event on the folder: a write through a shared mmap (the kernel moves the mtime but
notifies nobody), and a write through a hard link in another folder (the event goes to that folder). So
every folder's files are still all statted at least once every `verify_every` scans (the poll observer
makes that about a minute), spread over the scans, and such a change is found within that many intervals
instead of one.

Used only where directory mtimes are trusted (watch.mounts.TRUSTED_FS: local disks and tmpfs); on FUSE,
NFS and SMB a change made elsewhere raises no event here, so every file is statted at every scan. When
the kernel cannot watch a folder (fs.inotify.max_user_watches reached, or half of it held here: the rest
is left to the user's other programs; /proc not mounted) that folder's files are statted at every scan;
when its queue overflows, every folder's are, once.
"""

from __future__ import annotations

import ctypes
import os
import struct
import weakref

from committer.watch.entries import DirState

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF, IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED = 0x400, 0x800, 0x2000, 0x4000, 0x8000
IN_ONLYDIR = 0x01000000
MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
        | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name
_READ = 1 << 16
VERIFY_EVERY = 6  # scans: the longest a folder's files go without an lstat() (the poll observer: 60 s worth)


def _watch_limit() -> int:
    """fs.inotify.max_user_watches: the watches all of this user's programs may hold together."""
    try:
        with open("/proc/sys/fs/inotify/max_user_watches", encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 8192  # the kernel's smallest default


class Hints:
    """One inotify instance: the folders it watches, by watch descriptor, and whether each had an event."""

    def __init__(self, verify_every: int = VERIFY_EVERY, room: int | None = None) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._add = libc.inotify_add_watch
        self._add.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
        self._add.restype = ctypes.c_int
        self._rm = libc.inotify_rm_watch
        self._rm.argtypes = (ctypes.c_int, ctypes.c_int)
        self._rm.restype = ctypes.c_int
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self.fd = fd
        self._closer = weakref.finalize(self, os.close, fd)
        self.verify_every = max(1, verify_every)
        self.room = room if room is not None else _watch_limit() // 2  # leave the rest to other programs
        self._dirs: dict[int, DirState] = {}  # watch descriptor -> the folder it stands for
        self._seq = 0
        self.overflows = 0

    def close(self) -> None:
        self._closer()
        self._dirs.clear()

    def drain(self) -> None:
        """Read every event queued since the last drain: their folders are dirty."""
        dirs = self._dirs
        while True:
            try:
                buf = os.read(self.fd, _READ)
            except (BlockingIOError, InterruptedError):
                return
            offset, size = 0, len(buf)
            while offset < size:
                wd, mask, _, length = _EVENT.unpack_from(buf, offset)
                offset += _EVENT.size + length
                if mask & (IN_Q_OVERFLOW | IN_UNMOUNT):
                    self.overflows += mask & IN_Q_OVERFLOW != 0
                    for d in dirs.values():
                        d.dirty = True
                    continue
                folder = dirs.get(wd)
                if folder is None:
                    continue
                folder.dirty = True
                if mask & IN_IGNORED:
                    del dirs[wd]  # the watch is gone (folder deleted, or its filesystem unmounted)

    def quiet(self, d: DirState) -> bool:
        """Whether d's files can go unstatted this scan: watched, no event since, not due for a check.
        Counts the skip."""
        if d.dirty or d.checks + 1 >= self.verify_every or self._dirs.get(d.wd) is not d:
            return False
        d.checks += 1
        return True

    def watch(self, fd: int, d: DirState) -> None:
        """Before d's entries are listed and statted: from here on every change raises an event."""
        d.dirty = False
        d.checks = 0
        if self._dirs.get(d.wd) is d or len(self._dirs) >= self.room:
            return
        # the descriptor's own folder, reached through /proc without any path walk a rename could fool
        wd = self._add(self.fd, f"/proc/self/fd/{fd}".encode(), MASK)
        if wd < 0:
            return  # not watched: statted at every scan
        d.wd = wd
        self._dirs[wd] = d  # the same folder seen at two paths (a bind mount): only the last is watched
        d.checks = self._seq % self.verify_every  # spread the folders' checks over the scans
        self._seq += 1

    def prune(self, scan: int) -> None:
        """After a whole scan: drop the watches of folders it did not visit (deleted, moved out of the
        tree, now ignored or a nested repository), and what was kept of them."""
        for wd in [wd for wd, d in self._dirs.items() if d.seen != scan]:
            del self._dirs[wd]
            self._rm(self.fd, wd)

    @property
    def closed(self) -> bool:
        return not self._closer.alive

    @property
    def watched(self) -> int:
        return len(self._dirs)
