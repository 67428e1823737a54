"""Writing one tree entry into the data directory: atomically, never through a symlink, LFS pointers
replaced by their objects when the local store has them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from committer.core import fsio
from committer.core.errors import CommitterError
from committer.git import lfs
from committer.git.objects import MODE_EXEC, MODE_LINK, TreeEntry


def write_entry(
    tree: fsio.Tree, git_dir: Path, rel: str, entry: TreeEntry, content: bytes,
    expect: Callable[[], bool] | None = None,
) -> bool:
    """Write one tree entry at `rel` atomically (a temporary file in its directory, then a rename), never
    through a symlink.

    `expect`, checked after the temporary file is complete and just before the rename, can refuse the
    replacement (a file changed meanwhile); the answer is then False and nothing was replaced.
    """
    try:
        if entry.mode == MODE_LINK:
            return tree.write(rel, content, link=True, expect=expect)
        mode = 0o755 if entry.mode == MODE_EXEC else 0o644
        return tree.write(rel, _real_content(git_dir, content), mode, expect=expect)
    except IsADirectoryError:
        raise CommitterError(f"{rel} is a directory now; move it away to write the file") from None
    except NotADirectoryError as exc:
        raise CommitterError(f"{exc.filename} is a file now; move it away to write {rel}") from None


def _real_content(git_dir: Path, content: bytes) -> bytes | Path:
    """An LFS pointer stands for the object in the local store, when it is there."""
    parsed = lfs.parse(content) if lfs.is_pointer(content) else None
    if parsed is not None:
        obj = lfs.object_path(git_dir, parsed[0])
        if obj.is_file():
            return obj
    return content
