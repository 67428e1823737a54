"""The repository's `info/attributes`: first a line that takes every content-changing attribute back to
"unspecified" for every path, so a `.gitattributes` in the data directory (or any macro it defines)
steers nothing: git gives `$GIT_DIR/info/attributes` precedence over every in-tree file. Lines after it
(the LFS paths, git.lfs) set what committer itself wants."""

from __future__ import annotations

from pathlib import Path

from committer.core import fsio

# gitattributes(5): everything that changes what git reads, writes, diffs, merges or archives.
_CONTENT = ("text", "eol", "crlf", "filter", "ident", "working-tree-encoding", "diff", "merge",
            "conflict-marker-size", "whitespace", "export-ignore", "export-subst", "delta", "encoding")
NEUTRAL = ("# written by committer: no attribute from the data directory applies\n"
           "* " + " ".join(f"!{name}" for name in _CONTENT) + "\n")


LFS_LINE_END = b" filter=lfs diff=lfs merge=lfs -text"


def ensure(git_dir: Path) -> bool:
    """Put the neutral line first in `<git_dir>/info/attributes`, keeping the lines after it; True when
    the file changed (a new repository, one made by an older version, or one edited by hand)."""
    target = git_dir / "info" / "attributes"
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        data = b""
    head = NEUTRAL.encode()
    if data.startswith(head):
        return False
    lines = [line for line in data.splitlines(keepends=True) if _ours(line)]
    target.parent.mkdir(parents=True, exist_ok=True)
    fsio.write_atomic(target, head + b"".join(lines), 0o644)
    return True


def _ours(line: bytes) -> bool:
    """A line committer writes after the neutral one: the LFS header and one exact path per LFS file
    (git.lfs.attribute_line); anything else found there is dropped, not trusted."""
    text = line.rstrip(b"\n")
    if text.startswith(b"# written by committer: files stored through LFS"):
        return True
    return text.startswith((b"/", b'"/')) and text.endswith(LFS_LINE_END)
