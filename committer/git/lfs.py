"""Large files through git-lfs, without an index or a clean filter: committer writes the pointers itself.

The LFS store is the bare repository's own (`<git_dir>/lfs/objects/ab/cd/<oid>`, where git-lfs
looks). Objects are immutable: a new one is written to `<git_dir>/lfs/tmp` and renamed into place,
an existing one is never opened for writing (git-lfs hard-links objects to a file:// remote on the
same file system, so rewriting one in place would also change the remote's copy).

Pushing: git runs `hooks/pre-push`, which runs `git lfs pre-push`; it scans the pushed commits for
pointer blobs (no attributes needed) and uploads their objects before git sends the commits.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import re
import secrets
import time
from collections.abc import Iterable
from pathlib import Path

from committer.core import fsio
from committer.core.errors import CommitterError
from committer.git import attributes
from committer.git.repo import GitRepo
from committer.git.runner import GitRunner

SPEC = "https://git-lfs.github.com/spec/v1"
# git-lfs itself never treats a blob this large or larger as a pointer.
POINTER_MAX = 1024
_CHUNK = 1 << 20
_STALE_SECONDS = 3600
_HOOK_MARK = "# written by committer (committer/lfs.py)"
# The pre-push hook. A plain absolute path as remote is given to git-lfs as a file:// URL: git-lfs
# refuses a remote without a scheme ("missing protocol") and would fail the whole push.
HOOK = f"""#!/bin/sh
{_HOOK_MARK}: upload the LFS objects of the pushed commits
# Nothing to upload while this repository holds no LFS object, and git-lfs would read every pushed
# object looking for pointers (over 600 MB for the first push of a million files).
if [ -z "$(find "${{GIT_DIR:-.}}/lfs/objects" -type f -print -quit 2>/dev/null)" ]; then
    cat >/dev/null
    exit 0
fi
command -v git-lfs >/dev/null 2>&1 || {{
    echo >&2 "committer: git-lfs is not installed; it is needed to push this repository's LFS objects"
    exit 2
}}
case "$2" in
/*)
    url="file://$(printf '%s\\n' "$2" | sed -e 's/%/%25/g' -e 's/#/%23/g' -e 's/?/%3F/g')"
    set -- "$url" "$url"
    ;;
esac
exec git lfs pre-push -- "$@"
"""
# The repository's own config (global and system config are not read by committer's git).
CONFIG = {
    # No lock verification round trip before each push (committer does not use LFS locks), and no
    # `lfs.<url>.locksverify` entries that git-lfs would otherwise write for servers without it.
    "lfs.locksverify": "false",
    # A pushed pointer whose object is missing locally fails the push instead of reaching the remote.
    "lfs.allowincompletepush": "false",
    # git-lfs writes this key itself when it is missing (seen with `git lfs clean`): set it first.
    "lfs.repositoryformatversion": "0",
    # Only for `git status` against the data directory: with `filter=lfs` in info/attributes, git
    # compares a large file with HEAD's pointer through this filter and keeps its stat data, instead
    # of seeing it modified on every scan. No smudge filter: nothing is ever downloaded on a checkout.
    "filter.lfs.clean": "git-lfs clean -- %f",
}
# The git config keys that choose where git-lfs sends and fetches objects. A `.lfsconfig` in a commit may
# set them too (git-lfs reads it from HEAD in a bare repository); git's own config wins over it, so every
# network git process is given them (see `endpoint_config`).
ENDPOINT_KEYS = ("lfs.url", "lfs.pushurl")
# The other keys git-lfs takes from `.lfsconfig` that would change what is transferred: an include or
# exclude filter (objects never fetched: pointer files where content belongs), skipped download errors.
PINNED = {"lfs.fetchinclude": "", "lfs.fetchexclude": "", "lfs.skipdownloaderrors": "false"}
_ATTRIBUTES_HEADER = "# written by committer: files stored through LFS (pointer blobs in the branch)\n"
_ATTRIBUTES = "filter=lfs diff=lfs merge=lfs -text"
_POINTER = re.compile(
    rb"version (?:https://git-lfs\.github\.com/spec/v1|https://hawser\.github\.com/spec/v1)\n"
    rb"(?:ext-\d-\w+ sha256:[0-9a-f]{64}\n)*"
    rb"oid sha256:(?P<oid>[0-9a-f]{64})\n"
    rb"size (?P<size>0|[1-9][0-9]*)\n"
)
_OID = re.compile(r"[0-9a-f]{64}")


@functools.cache
def available() -> bool:
    """Whether git-lfs is installed and runs (asked once per process)."""
    try:  # through a runner of its own: asked once, before any command's runner exists
        proc = GitRunner(30.0).run(Path("/"), ["lfs", "version"], check=False)
    except CommitterError:  # git missing, or killed at the deadline
        return False
    return proc.returncode == 0 and proc.stdout.startswith(b"git-lfs/")


def pointer(oid: str, size: int) -> bytes:
    """The pointer blob git-lfs writes for content with this sha256 and size (spec v1)."""
    if not _OID.fullmatch(oid) or size < 0:
        raise ValueError(f"not an LFS object: oid {oid!r}, size {size}")
    return f"version {SPEC}\noid sha256:{oid}\nsize {size}\n".encode()


def parse(data: bytes) -> tuple[str, int] | None:
    """(oid, size) of a pointer blob; None for any other content."""
    if len(data) >= POINTER_MAX:
        return None
    match = _POINTER.fullmatch(data)
    if match is None:
        return None
    return match["oid"].decode(), int(match["size"])


def is_pointer(data: bytes) -> bool:
    """Whether the blob is an LFS pointer."""
    return parse(data) is not None


def object_path(git_dir: Path, oid: str) -> Path:
    """Where git-lfs keeps (and looks for) the object with this oid."""
    if not _OID.fullmatch(oid):
        raise ValueError(f"not an LFS oid: {oid!r}")
    return git_dir / "lfs" / "objects" / oid[:2] / oid[2:4] / oid


def store(git_dir: Path, fd: int, size: int) -> bytes:
    """Copy the open file's content into the LFS store and return its pointer blob.

    `fd` is a regular file; it is read from offset 0 to its end with positional reads (its offset
    is left alone), one chunk in memory at a time. `size` is what fstat said: the space reserved
    up front (a full disk fails before anything is copied). The pointer describes the bytes
    actually copied, which differ from `size` only when the file changed while it was read.

    The content is hashed first; when the store already holds that object nothing is written.
    Otherwise it is copied to a temporary file in `<git_dir>/lfs/tmp`, hashed again while copied
    (the object is named by what was written), fsynced, and renamed into place.
    """
    buf = bytearray(_CHUNK)
    oid, count = _digest(fd, buf, None)
    if _present(git_dir, oid, count):
        return pointer(oid, count)
    tmp_dir = git_dir / "lfs" / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"committer-{os.getpid()}-{secrets.token_hex(8)}"
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        try:
            _reserve(out, size)
            oid, count = _digest(fd, buf, out)
            if count != size:
                os.ftruncate(out, count)
            os.fsync(out)
        finally:
            os.close(out)
        final = object_path(git_dir, oid)
        if not _present(git_dir, oid, count):
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            _fsync_dir(final.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return pointer(oid, count)


def _digest(fd: int, buf: bytearray, out: int | None) -> tuple[str, int]:
    """sha256 and length of the file's content, copied to `out` on the way when given."""
    sha = hashlib.sha256()
    view = memoryview(buf)
    offset = 0
    while True:
        n = os.preadv(fd, [buf], offset)
        if n == 0:
            break
        chunk = view[:n]
        sha.update(chunk)
        if out is not None:
            written = 0
            while written < n:
                written += os.write(out, chunk[written:])
        offset += n
    return sha.hexdigest(), offset


def _present(git_dir: Path, oid: str, size: int) -> bool:
    try:
        return object_path(git_dir, oid).stat().st_size == size
    except FileNotFoundError:
        return False


def _reserve(out: int, size: int) -> None:
    if size <= 0 or not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(out, 0, size)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        # EOPNOTSUPP and the like: the file system cannot reserve; the copy finds out as it writes.


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prepare(repo: GitRepo) -> None:
    """Make the bare repository push LFS objects with its branch; idempotent, writes only in git_dir.

    Installs `hooks/pre-push` (an existing hook of someone else's is kept as
    `hooks/pre-push.before-committer`) and sets CONFIG in the repository's own config. When
    everything is in place this costs one `git config` process and one small file read.
    """
    git_dir = repo.git_dir
    current = repo.git("config", "--local", "--list", "-z", check=False).stdout
    have: dict[str, str] = {}
    for record in current.decode("utf-8", "replace").split("\0"):
        key, _, value = record.partition("\n")
        have[key.lower()] = value
    if "core.hookspath" in have:
        raise CommitterError(
            f"{git_dir}: core.hooksPath is set in the repository's config; committer needs the "
            "repository's own hooks directory for the git-lfs pre-push hook: unset it"
        )
    for key, value in CONFIG.items():
        if have.get(key) != value:
            repo.git("config", "--local", key, value)
    _install_hook(git_dir / "hooks" / "pre-push")
    _remove_stale_temporaries(git_dir / "lfs" / "tmp")


def _remove_stale_temporaries(tmp_dir: Path) -> None:
    """Copies a killed process left behind (a live store finishes within the hour)."""
    try:
        entries = list(os.scandir(tmp_dir))
    except FileNotFoundError:
        return
    now = time.time()
    for entry in entries:
        if entry.name.startswith("committer-"):
            with contextlib.suppress(FileNotFoundError):
                if now - entry.stat(follow_symlinks=False).st_mtime > _STALE_SECONDS:
                    os.unlink(entry.path)


def _install_hook(hook: Path) -> None:
    try:
        text = hook.read_text(errors="replace")
    except FileNotFoundError:
        text = None
    if text == HOOK and os.access(hook, os.X_OK):
        return
    hook.parent.mkdir(parents=True, exist_ok=True)
    if text is not None and _HOOK_MARK not in text:
        os.replace(hook, hook.with_name("pre-push.before-committer"))
    fsio.write_atomic(hook, HOOK.encode(), 0o755)


def attribute_line(path: str) -> str:
    """The info/attributes line that marks exactly this tree path (relative, `/`-separated) as LFS."""
    pattern = "/" + re.sub(r"([\\*?\[\]])", r"\\\1", path)
    if re.search(r'[\s"\x00-\x1f\x7f]', pattern):
        # A C-quoted pattern: the only way to give git one with spaces, tabs or newlines.
        pattern = '"' + "".join(_c_quote(c) for c in pattern) + '"'
    return f"{pattern} {_ATTRIBUTES}"


def _c_quote(c: str) -> str:
    if c in '"\\':
        return "\\" + c
    if ord(c) < 0x20 or c == "\x7f":
        return f"\\{ord(c):03o}"
    return c


def write_attributes(git_dir: Path, paths: Iterable[str]) -> bool:
    """Make `<git_dir>/info/attributes` mark exactly `paths` as LFS; True when the file changed.

    Only needed for the stat cache of `git status` against the data directory (the push needs no
    attributes): give it the paths whose blob in the branch is a pointer, no more (a path marked
    but stored as a plain blob would look modified on every scan). Clones can take the same file
    as their `.git/info/attributes` so that `git lfs pull` leaves them clean.
    """
    text = attributes.NEUTRAL + _ATTRIBUTES_HEADER + "".join(attribute_line(p) + "\n" for p in sorted(set(paths)))
    data = os.fsencode(text)  # paths that are not UTF-8 come back as the bytes they were
    target = git_dir / "info" / "attributes"
    try:
        if target.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    fsio.write_atomic(target, data, 0o644)
    return True


def endpoint(remote: str) -> str:
    """The LFS endpoint git-lfs derives from the remote itself (credentials already taken out of it): for
    http(s) `<repo>.git/info/lfs`, for ssh and file remotes the remote (git-lfs then asks the ssh host, or
    reads the other repository's store); a plain path as a file:// URL, as the pre-push hook gives it."""
    if remote.startswith("/"):
        return "file://" + remote.replace("%", "%25").replace("#", "%23").replace("?", "%3F")
    scheme = remote.partition("://")[0].lower() if "://" in remote else ""
    if scheme not in ("http", "https"):
        return remote
    base = remote.rstrip("/")
    return (base if base.endswith(".git") else base + ".git") + "/info/lfs"


def endpoint_config(remote: str) -> dict[str, str]:
    """Git config for a network git process: LFS objects go to, and come from, the remote's own endpoint,
    and every object is fetched, whatever a `.lfsconfig` in the branch says."""
    target = endpoint(remote)
    return {**{key: target for key in ENDPOINT_KEYS}, **PINNED}
