"""What kind of filesystem the data directory is on: whether its directory mtimes can be trusted
(the poll observer then skips listing unchanged directories) and whether `auto` polls it."""

from __future__ import annotations

import os

# Local filesystems whose directory mtime changes whenever an entry is added, removed or renamed.
TRUSTED_FS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "zfs", "tmpfs"})


def filesystem_type(path: str) -> str:
    """The type of the filesystem holding `path`, from /proc/self/mountinfo ("" if unknown)."""
    try:
        dev = os.stat(path).st_dev
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    wanted = f"{os.major(dev)}:{os.minor(dev)}"
    real = os.path.realpath(path)
    best, best_len = "", -1
    for line in lines:
        fields = line.split(" ")
        try:
            tail = fields[fields.index("-") + 1 :]
        except ValueError:
            continue
        if not tail or len(fields) < 5:
            continue
        mount_point = fields[4].replace("\\040", " ")
        if fields[2] == wanted:
            return tail[0]
        if (real == mount_point or real.startswith(mount_point.rstrip("/") + "/")) and len(mount_point) > best_len:
            best, best_len = tail[0], len(mount_point)
    return best


# Filesystems where inotify sees nothing (or only this host's own writes): `auto` polls them.
POLLED_FILESYSTEMS = ("fuse", "nfs", "cifs", "smb", "9p", "ceph", "glusterfs", "davfs", "sshfs", "s3fs")
