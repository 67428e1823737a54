"""HEAD's entries for a batch of a few files, without starting a git process for each batch.

A watcher's batch names a handful of files; asking `git ls-tree` for their entries costs a process start
(3-7 ms, more on a busy machine) on the path from the event to the commit. Here one `git cat-file --batch`
is kept running and asked, in one round trip, for the folders that hold the batch's files (`<commit>:<folder>`),
whose entries give each file's mode and blob. Where the
answer is not a plain list of files (a candidate that is a folder in HEAD, many candidates, the process
failing) the caller asks `git ls-tree` as before.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import time
from collections.abc import Callable, Sequence

from committer.git.objects import TreeEntry
from committer.git.repo import GitRepo
from committer.git.runner import git_argv, git_env, kill_group

MOST_PATHS = 64  # more candidates than this: one ls-tree is as cheap
SECONDS = 10.0  # one batch's lookups; past it the process is killed and ls-tree answers
_TREE_MODE = b"40000"


class HeadLookup:
    """Entries of named files in a commit's tree, through one long-running `git cat-file --batch`."""

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo
        self._proc: subprocess.Popen[bytes] | None = None
        self._buf = bytearray()  # what the process printed that is not read yet
        self._deadline = 0.0

    def entries(self, rev: str, paths: Sequence[str]) -> list[tuple[str, TreeEntry]] | None:
        """(path, entry) of each path that is a file in `rev`, in git's order; None when ls-tree must answer
        (a folder among the paths, too many paths, the process failed)."""
        if not paths or len(paths) > MOST_PATHS or any(not p or "\n" in p for p in paths):
            return None
        self._deadline = time.monotonic() + SECONDS
        folders = sorted({p.rpartition("/")[0] for p in paths})
        try:
            trees = dict(zip(folders, self._ask([f"{rev}:{f}" if f else f"{rev}^{{tree}}" for f in folders]),
                             strict=True))
            if trees.get("") is None and "" in trees:
                return None  # no such commit: ls-tree says so
            found = []
            for path in sorted(paths, key=os.fsencode):
                folder, _, name = path.rpartition("/")
                entry = (trees[folder] or {}).get(os.fsencode(name))
                if entry is None:
                    continue  # not in HEAD
                if entry[0] in (_TREE_MODE, b"160000"):
                    return None  # a folder (or a submodule) in HEAD: its files are listed by ls-tree
                found.append((path, TreeEntry(entry[0].decode(), entry[1].hex())))
            return found
        except (OSError, ValueError):
            self.close()
            return None

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        """End the process (a later lookup starts another)."""
        proc, self._proc = self._proc, None
        self._buf.clear()
        if proc is not None:
            self.repo.runner.forget(proc)
            kill_group(proc)
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                proc.wait(1.0)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()

    def _process(self) -> subprocess.Popen[bytes]:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            if proc is not None:
                self.close()
            argv = git_argv(self.repo.git_dir, ["cat-file", "--batch"])
            proc = self._proc = self.repo.runner.start(argv, git_env(), subprocess.PIPE)
        return proc

    def _ask(self, names: list[str]) -> list[dict[bytes, tuple[bytes, bytes]] | None]:
        """Each named tree's entries, asked at once; None for a name that is not a tree."""
        proc = self._process()
        assert proc.stdin is not None
        proc.stdin.write(b"".join(os.fsencode(name) + b"\n" for name in names))
        proc.stdin.flush()
        trees: list[dict[bytes, tuple[bytes, bytes]] | None] = []
        for _ in names:
            fields = self._read(lambda buf: buf.find(b"\n") + 1).split()
            if len(fields) != 3:
                trees.append(None)  # missing: no such folder in HEAD
                continue
            size = int(fields[2])
            data = self._read(lambda buf, size=size: size + 1 if len(buf) > size else 0)  # type: ignore[misc]
            trees.append(_parse_tree(data[:size], len(fields[0]) // 2) if fields[1] == b"tree" else None)
        return trees

    def _read(self, complete: Callable[[bytearray], int]) -> bytes:
        """Bytes from the process up to where `complete` says the answer ends (0: not yet), within the
        batch's deadline."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        buf = self._buf
        while not (end := complete(buf)):
            left = self._deadline - time.monotonic()
            if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
                raise OSError("cat-file did not answer in time")
            chunk = os.read(proc.stdout.fileno(), 1 << 16)
            if not chunk:
                raise OSError("cat-file ended")
            buf += chunk
        out = bytes(buf[:end])
        del buf[:end]
        return out


def _parse_tree(data: bytes, width: int) -> dict[bytes, tuple[bytes, bytes]]:
    """name -> (mode, raw id of `width` bytes) of a tree object's content."""
    out: dict[bytes, tuple[bytes, bytes]] = {}
    at, end = 0, len(data)
    while at < end:
        space = data.index(b" ", at)
        nul = data.index(b"\0", space)
        out[data[space + 1 : nul]] = (data[at:space], data[nul + 1 : nul + 1 + width])
        at = nul + 1 + width
    return out
