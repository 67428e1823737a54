"""History as the pages show it, read from the bare repository with read-only git commands.

Nothing here takes the instance lock, reads or writes git's index, or writes anything: a page being
read never delays a commit. Every git process goes through GitRepo.git (its deadline, its hermetic
environment, pathspecs taken literally).
"""

from __future__ import annotations

import datetime
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from committer.commit import trailer
from committer.core.errors import CommitterError, GitError
from committer.git import lfs, revs
from committer.git.objects import MODE_GITLINK, MODE_LINK
from committer.git.repo import GitRepo
from committer.git.trees import blob_sizes
from committer.serve import tags as tagcache

PAGE = 50  # commits a timeline page
FILE_PAGE = 50  # revisions a file page
LISTED_MAX = 200  # a commit touching more files than this shows its counts, not its list, on the timeline
SHOWN_MAX = 1_000_000  # bytes: larger files are summarised, not rendered
RAW_MAX = 32_000_000  # bytes of a file kept in git (not LFS) that /raw reads into memory to send
DIFFS_MAX = 200  # files whose diff a commit page renders; the rest are listed
SNIFF = 8000  # bytes looked at to tell text from binary (as git does)
_SHA = re.compile(r"[0-9a-f]{4,40}")
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ZERO = "0" * 40
STATUS = {"A": "added", "M": "modified", "D": "deleted", "R": "renamed", "T": "modified", "C": "added"}
# What each kind of commit is called on the pages (the trailer's "op"; None is an ordinary save).
OPS = {
    None: "saved", "reconcile": "saved", "init": "first save", "restore": "restored", "merge": "merged",
    "conflict": "conflict", "confirm-deletes": "deletions confirmed", "untrack": "stopped tracking",
    "pull": "pulled", "snapshot": "snapshot", "allow-secret": "saved (not a secret)",
}
CONFLICT_MARK = " (conflict from "


class NotFound(CommitterError):
    """What the request names is not in the history (a 404, never a traceback)."""


@dataclass(frozen=True)
class Change:
    """One file a commit touched."""

    status: str  # added, modified, deleted, renamed
    path: str
    old_path: str | None = None
    old_sha: str | None = None
    new_sha: str | None = None
    old_mode: str | None = None
    new_mode: str | None = None

    @property
    def conflict_copy(self) -> bool:
        return CONFLICT_MARK in os.path.basename(self.path)


@dataclass
class Commit:
    """One commit as the timeline shows it."""

    sha: str
    parents: list[str]
    when: int
    message: str
    meta: dict[str, Any] | None
    changes: list[Change] | None = None  # None: too many to list (see counts)
    tags: list[str] = field(default_factory=list)
    author: str = ""

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]

    @property
    def op(self) -> str:
        raw = (self.meta or {}).get("op")
        if raw is None and len(self.parents) > 1:
            return "merged"
        return OPS.get(raw, str(raw))

    @property
    def host(self) -> str:
        return str((self.meta or {}).get("host") or "")

    @property
    def counts(self) -> dict[str, int]:
        meta = self.meta or {}
        if self.changes is not None and not any(k in meta for k in ("added", "modified", "deleted", "renamed")):
            found = {"added": 0, "modified": 0, "deleted": 0, "renamed": 0}
            for change in self.changes:
                found[change.status] = found.get(change.status, 0) + 1
            return found
        return {k: int(meta.get(k) or 0) for k in ("added", "modified", "deleted", "renamed")}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def conflict(self) -> bool:
        return (self.meta or {}).get("op") == "conflict" or any(c.conflict_copy for c in self.changes or [])


@dataclass(frozen=True)
class Revision:
    """One revision of a file: the commit and the file as it was there."""

    commit: Commit
    path: str
    status: str
    old_path: str | None
    sha: str | None  # None: deleted in this commit
    size: int | None
    lfs: bool


def check_path(path: str) -> str:
    """A path inside the data directory as history names it, or NotFound: no '..', no NUL, no absolute
    path. Other control characters are allowed: a file may have them in its name (`new\\nline.md`), and
    git takes the path after `--` as a literal."""
    if "\x00" in path:
        raise NotFound("that path has characters no file in the history has")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise NotFound("that path points outside the data directory")
    return "/".join(parts)


def check_rev(repo: GitRepo, rev: str) -> str:
    """The full id of a commit named by a (possibly short) hex id, a tag or a branch; NotFound otherwise.
    Nothing that looks like an option reaches git."""
    if not rev or rev.startswith("-") or len(rev) > 200 or any(ord(c) < 0x21 for c in rev):
        raise NotFound(f"{rev[:60]!r} is not a revision of this history")
    try:
        sha = repo.resolve(rev) if (_SHA.fullmatch(rev) or repo.git(
            "check-ref-format", "--allow-onelevel", rev, check=False).returncode == 0) else None
    except revs.OutOfHistory as exc:
        raise NotFound(f"{rev[:60]!r} is outside this history: the {exc.edge} version is {exc.sha[:12]}"
                       f" of {exc.at}") from None
    if sha is None:
        raise NotFound(f"{rev[:60]!r} is not a revision of this history")
    return sha


_RECORD = re.compile(rb"[0-9a-f]{40}\x1f")


def parse_log(out: bytes) -> list[tuple[Commit, list[Change]]]:
    """Records of `git log --format=LOG_FORMAT -z [--raw]`. A message is data: one that holds the record
    separators themselves is glued back together, never a failed page."""
    chunks: list[bytes] = []
    for chunk in out.split(b"\x1e")[1:]:
        if _RECORD.match(chunk) or not chunks:
            chunks.append(chunk)
        else:  # a \x1e inside a message
            chunks[-1] += b"\x1e" + chunk
    found = []
    for chunk in chunks:
        head, _, rest = chunk.partition(b"\x1f\x00")
        parts = head.split(b"\x1f", 4)
        if len(parts) < 5 or not parts[2].isdigit():
            continue
        sha, parents, when, author, body = parts
        message = body.decode("utf-8", "replace")
        commit = Commit(sha.decode(), parents.decode().split(), int(when), message, trailer.read(message),
                        author=author.decode("utf-8", "replace"))
        found.append((commit, list(parse_raw(rest.lstrip(b"\n").split(b"\x00")))))
    return found


def parse_raw(fields: list[bytes]) -> Iterable[Change]:
    """`--raw -z` records: ':old new oldsha newsha status', path[, new path]."""
    index = 0
    while index < len(fields):
        meta = fields[index]
        if not meta.startswith(b":"):
            index += 1
            continue
        try:
            old_mode, new_mode, old_sha, new_sha, status = meta[1:].decode().split(" ")
        except ValueError:  # not a record git wrote (a message that imitates one): skipped
            index += 1
            continue
        letter = status[:1]
        if letter in ("R", "C") and index + 2 < len(fields):
            old_path, path = os.fsdecode(fields[index + 1]), os.fsdecode(fields[index + 2])
            index += 3
        else:
            old_path, path = None, os.fsdecode(fields[index + 1]) if index + 1 < len(fields) else ""
            index += 2
        yield Change(
            STATUS.get(letter, "modified"), path, old_path if letter == "R" else None,
            None if old_sha == _ZERO else old_sha, None if new_sha == _ZERO else new_sha,
            None if old_mode == "000000" else old_mode, None if new_mode == "000000" else new_mode,
        )


LOG_FORMAT = "--format=%x1e%H%x1f%P%x1f%ct%x1f%an <%ae>%x1f%B%x1f"


def timeline(repo: GitRepo, skip: int = 0, path: str = "", until: str = "", limit: int = PAGE) -> tuple[
        list[Commit], bool]:
    """(up to `limit` commits newest first, whether there are older ones), optionally of one path and from
    a day back; each with its changed files and snapshot tags."""
    args = ["log", LOG_FORMAT, "-z", f"--max-count={limit + 1}", f"--skip={max(0, skip)}"]
    if until:
        last = until_span(repo, until).last
        if last < 0:  # before 1970: before any history
            return [], False
        if last < time.time():  # still to come: everything
            args.append(f"--until=@{int(last)} +0000")  # with its zone: git reads a bare @86399 as now
    args += [repo.ref, "--"]
    if path:
        args.append(path)
    proc = repo.git(*args, check=False)
    if proc.returncode != 0:
        if repo.head() is None:  # no commit yet: asked only now, not before every page
            return [], False
        raise GitError(args, proc.returncode, proc.stderr.decode("utf-8", "replace"))
    commits = [c for c, _ in parse_log(proc.stdout)]
    more = len(commits) > limit
    commits = commits[:limit]
    attach_changes(repo, commits)
    tags = snapshot_tags(repo)
    for commit in commits:
        commit.tags = tags.get(commit.sha, [])
    return commits, more


def until_span(repo: GitRepo, until: str) -> revs.Span:
    """What the "On or before" text names (any date the CLI takes: 2026-11-30 is that whole day, yesterday
    18:00, last tuesday, 2 hours ago), or NotFound naming the forms."""
    found = revs.parse_date(repo, until) if len(until) <= 100 else None
    if found is None:
        raise NotFound(f"{until[:40]!r} is not a date such as 2026-11-30, yesterday 18:00 or 2 hours ago")
    return found


def check_date(until: str, repo: GitRepo | None = None) -> datetime.date:
    """The day of the "On or before" text (its last day), or NotFound naming what is wrong (git would read
    2026-02-31 somehow). Without `repo` only a day such as 2026-11-30 is read."""
    try:
        if _DATE.fullmatch(until):
            return datetime.date.fromisoformat(until)
    except ValueError:
        pass
    if repo is None or _DATE.fullmatch(until):  # 2026-02-31; a day with a time (18:00) is read below
        raise NotFound(f"{until[:40]!r} is not a date such as 2026-11-30, yesterday 18:00 or 2 hours ago")
    last = until_span(repo, until).last
    if last < 0:
        return datetime.date(1970, 1, 1)
    return datetime.date.fromtimestamp(last) if last < 253402214400 else datetime.date.max


def span(repo: GitRepo) -> tuple[int, int] | None:
    """(unix time of the oldest commit, of the newest) of the branch, or None when it has none."""
    if repo.head() is None:
        return None
    roots = repo.git("rev-list", "--max-parents=0", repo.ref, "--").stdout.split()
    times = repo.git("log", "--no-walk", "--format=%ct", repo.ref, *[r.decode() for r in roots[:20]], "--").stdout
    stamps = [int(t) for t in times.split() if t.isdigit()]
    return (min(stamps), max(stamps)) if stamps else None


def attach_changes(repo: GitRepo, commits: Sequence[Commit], listed: int | None = LISTED_MAX) -> None:
    """Each commit's files against its first parent (renames paired when the content is the same, as
    committer pairs them), through one `git diff-tree --stdin`; a commit with more than `listed` files
    (by its trailer's counts, or by the diff) keeps None."""
    wanted = [c for c in commits if listed is None or c.meta is None or c.total <= listed]
    if not wanted:
        return
    lines = "".join(f"{c.sha} {c.parents[0]}\n" if c.parents else f"{c.sha}\n" for c in wanted)
    out = repo.git("diff-tree", "--stdin", "-r", "-z", "--root", "-M100%", "--no-abbrev", "--raw",
                   input=lines.encode()).stdout
    by_sha: dict[str, list[Change]] = {c.sha: [] for c in wanted}
    current: str | None = None
    fields = out.split(b"\x00")
    index = 0
    while index < len(fields):
        item = fields[index]
        if _FULL_SHA.fullmatch(item.decode("ascii", "replace")):
            current = item.decode()
            index += 1
            continue
        if item.startswith(b":"):
            step = 3 if item.split(b" ")[-1][:1] in (b"R", b"C") else 2
            if current in by_sha:
                by_sha[current].extend(parse_raw(fields[index : index + step]))
            index += step
            continue
        index += 1
    for commit in wanted:
        changes = by_sha[commit.sha]
        commit.changes = changes if listed is None or len(changes) <= listed else None


def snapshot_tags(repo: GitRepo) -> dict[str, list[str]]:
    """Commit id -> the tags (snapshots) on it; read again only when the tags changed."""
    return tagcache.snapshot_tags(repo)


def is_folder(repo: GitRepo, path: str) -> bool:
    """Whether the path is a folder in HEAD."""
    return not path or path_kind(repo, path) == "tree"


def path_kind(repo: GitRepo, path: str) -> str | None:
    """What `path` is in the branch's newest version, from one `git ls-tree`: "tree" (a folder), "blob" (a
    file), "commit" (a submodule), or None (not there, or no commit yet)."""
    proc = repo.git("ls-tree", "--full-tree", "-z", repo.ref, "--", path, check=False)
    fields = proc.stdout.split(b"\x00")[0].split(b"\t")[0].split()
    return fields[1].decode() if proc.returncode == 0 and len(fields) == 3 else None


def commit(repo: GitRepo, rev: str) -> Commit:
    """One commit with its files."""
    sha = check_rev(repo, rev)
    records = parse_log(repo.git("log", LOG_FORMAT, "-z", "-1", sha, "--").stdout)
    if not records:
        raise NotFound(f"{rev} is not a commit of this history")
    found = records[0][0]
    attach_changes(repo, [found], listed=None)
    found.tags = snapshot_tags(repo).get(found.sha, [])
    return found


@dataclass(frozen=True)
class Blob:
    """A file as it was at a revision."""

    path: str
    rev: str
    sha: str
    mode: str
    content: bytes  # the blob, or the LFS object when the blob is a pointer whose object is here
    lfs: bool
    lfs_missing: bool
    size: int
    lfs_object: Path | None = None  # the object in the local LFS store, streamed for a download

    @property
    def binary(self) -> bool:
        return self.lfs or b"\x00" in self.content[:SNIFF]

    @property
    def too_big(self) -> bool:
        return self.size > SHOWN_MAX

    @property
    def link(self) -> bool:
        """A symbolic link: its content is the text of its target, shown as it is and never followed."""
        return self.mode == MODE_LINK


def blob_at(repo: GitRepo, rev: str, path: str, read_big: bool = False) -> Blob:
    """The file `path` at `rev`; an LFS pointer stands for its object in the local LFS store."""
    sha = check_rev(repo, rev)
    if not path:
        raise NotFound("name a file to show")
    entries = repo.ls_tree(sha, [path])
    entry = entries.get(path)
    if entry is None:
        raise NotFound(f"{path} is not in {sha[:10]}")
    if entry.mode == MODE_GITLINK:  # pushed from elsewhere: a commit of another repository, not a file
        raise NotFound(f"{path} is a submodule (a link to another repository) in {sha[:10]}: it has no content here")
    size = blob_sizes(repo, [entry.sha]).get(entry.sha, 0)
    content = repo.read_blobs([entry.sha])[entry.sha] if size <= (RAW_MAX if read_big else SHOWN_MAX) else b""
    pointer = lfs.parse(content) if size < lfs.POINTER_MAX and entry.mode != MODE_LINK else None
    if pointer is None:
        return Blob(path, sha, entry.sha, entry.mode, content, False, False, size)
    obj = lfs.object_path(repo.git_dir, pointer[0])
    here = obj.is_file()
    return Blob(path, sha, entry.sha, entry.mode, b"", True, not here, pointer[1], obj if here else None)
