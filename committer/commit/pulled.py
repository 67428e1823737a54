"""Files a pull just wrote, watched for a write that silently undoes the pulled change.

A sync tool beside the daemon (rclone bisync) may have listed the data directory just before a pull wrote
the remote's version, and copy the other side's version over it a moment later: committed as an ordinary
edit, the remote's version would survive only in history. So, for WINDOW seconds after a pull wrote a
file, a new content there that does not carry the pulled change (a 3-way check against the version before
the pull) is a conflict: the pulled version is written back beside it as a conflict copy, committed with it.
"""

from __future__ import annotations

import stat
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from committer.core import fsio, logs
from committer.git import lfs, trees
from committer.git.objects import blob_id
from committer.git.repo import GitRepo

log = logs.get(__name__)

WINDOW = 60.0  # seconds after a pull wrote a file during which a write there is checked
MERGE_MAX = 4 << 20  # larger files are not merged to check; only a return to the old version counts
Retitle = Callable[[str, str, bytes], bytes]  # (note, copy, content) -> the copy's content


@dataclass(frozen=True)
class Written:
    """One file a pull wrote: the blob it replaced (None: it was not there), the blob written, when."""

    old: str | None
    new: str
    at: float


class PullWrites:
    """The files the last pulls wrote, for WINDOW seconds (main loop only: the pull and the commit step)."""

    def __init__(self, window: float = WINDOW, now: Callable[[], float] = time.time) -> None:
        self.window = window
        self.now = now
        self._written: dict[str, Written] = {}

    def wrote(self, path: str, old: str | None, new: str) -> None:
        """A pull wrote `new` at `path` where `old` was (None when nothing was)."""
        self._written[path] = Written(old, new, self.now())

    def forget(self, path: str) -> None:
        """No check for this path any more (its versions are all kept another way)."""
        self._written.pop(path, None)

    def __len__(self) -> int:
        return len(self._written)

    def _expire(self) -> None:
        limit = self.now() - self.window
        for path in [p for p, w in self._written.items() if w.at < limit]:
            del self._written[path]

    def check(self, repo: GitRepo, candidates: Iterable[str], taken: Callable[[str], bool], scratch: Path,
              retitle: Retitle = lambda _path, _copy, content: content) -> list[dict[str, str]]:
        """Conflict copies for the candidates whose new content drops what a pull just wrote there: each gets
        the pulled version beside it (`path`, `copy`, `why`), through `retitle` (a note's frontmatter)."""
        self._expire()
        if not self._written:
            return []
        found = []
        with fsio.Tree(repo.data_dir) as tree:
            for path in candidates:
                pulled = self._written.get(path)
                if pulled is None:
                    continue
                try:
                    if not stat.S_ISREG(tree.lstat(path).st_mode):
                        continue
                    disk = tree.read(path)
                except OSError:
                    continue  # deleted since: a deletion is committed as one, the pulled version is in history
                if blob_id(disk) == pulled.new or _carries(repo, pulled, disk, scratch):
                    continue
                content = repo.read_blobs([pulled.new]).get(pulled.new)
                if content is None or lfs.is_pointer(content):
                    continue
                when = self.now()
                copy = trees.conflict_name(path, repo.branch, when, lambda c: taken(c) or tree.exists(c))
                tree.write(copy, retitle(path, copy, content))
                del self._written[path]
                found.append({"path": path, "copy": copy,
                              "why": f"overwritten {round(when - pulled.at)} s after a pull changed it, without "
                                     "the pulled change (a sync tool copying an older version?)"})
        return found


def _carries(repo: GitRepo, pulled: Written, disk: bytes, scratch: Path) -> bool:
    """Whether `disk` already holds the change the pull made (old -> new): merging that change into it
    changes nothing."""
    if pulled.old is None:
        return False  # the pull made the file: any other content replaced it
    if blob_id(disk) == pulled.old:
        return False  # the version before the pull, back again
    blobs = repo.read_blobs([pulled.old, pulled.new])
    base, theirs = blobs.get(pulled.old), blobs.get(pulled.new)
    if base is None or theirs is None or max(len(base), len(theirs), len(disk)) > MERGE_MAX:
        return True  # cannot tell: only a return to the old version is counted
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        names = []
        for label, data in (("ours", disk), ("base", base), ("theirs", theirs)):
            name = Path(folder) / label
            name.write_bytes(data)
            names.append(str(name))
        merged = repo.git("merge-file", "-p", "-q", *names, check=False)
    return merged.returncode == 0 and merged.stdout == disk
