"""A commit's files as diffs a person can read: git's own diff of the two blobs, unified or side by
side, with the changed words marked; a changed picture shown old beside new; other binary files, LFS
files and very large files summarised.

Everything here is bounded, whatever a commit holds: the word diff compares at most PAIR_CELLS token
pairs for one line pair (after the common start and end are taken off, which is linear) and PAGE_CELLS
for a whole page, then marks the rest of a line whole; a page renders at most PAGE_TEXT characters of
diff lines and summarises the files after that. `difflib` on whole long lines was quadratic or worse
(a 4,000-character line pair of repeated words took over two minutes).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

from committer.git import lfs
from committer.git.repo import GitRepo
from committer.git.trees import blob_sizes
from committer.serve import shown
from committer.serve.history import DIFFS_MAX, SHOWN_MAX, SNIFF, Change, Commit
from committer.serve.wording import human_size


@dataclass(frozen=True)
class Segment:
    text: str
    changed: bool


@dataclass(frozen=True)
class Line:
    kind: str  # context, del, add, hunk
    old_no: int | None
    new_no: int | None
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Row:
    """One row of a side-by-side diff."""

    left: Line | None
    right: Line | None
    hunk: str | None = None


@dataclass
class FileDiff:
    change: Change
    summary: str | None  # why there is no rendered diff (binary, too big, LFS), else None
    lines: list[Line]
    pictures: bool = False  # a picture changed: the page shows the old one beside the new one

    @property
    def rows(self) -> list[Row]:
        return side_by_side(self.lines)

    @property
    def added(self) -> int:
        return sum(1 for line in self.lines if line.kind == "add")

    @property
    def removed(self) -> int:
        return sum(1 for line in self.lines if line.kind == "del")


_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$")


_WORDS = re.compile(r"\w+|\s+|[^\w\s]", re.UNICODE)
PAIR_CELLS = 10_000  # tokens x tokens one line pair's word diff may compare (about 10 ms at worst)
PAGE_CELLS = 1_000_000  # the same for a whole page; after that, changed lines are marked from first to last change
PAGE_TEXT = 2_000_000  # characters of diff lines one page renders; later files are summarised


class Budget:
    """What one page may still spend on word diffs and on rendered lines; `stop` ends the work early."""

    def __init__(self, stop: Callable[[], None] | None = None) -> None:
        self.cells = PAGE_CELLS
        self.text = PAGE_TEXT
        self.stop = stop or (lambda: None)


def diffs(repo: GitRepo, commit: Commit, stop: Callable[[], None] | None = None) -> list[FileDiff]:
    """A diff of each file the commit changed (the first DIFFS_MAX of them), each text file as git's
    unified diff with word-level highlights; binary, LFS and files over SHOWN_MAX summarised. `stop` is
    called between steps and raises when the page's work must end."""
    budget = Budget(stop)
    changes = (commit.changes or [])[:DIFFS_MAX]
    shas = [s for c in changes for s in (c.old_sha, c.new_sha) if s]
    sizes = blob_sizes(repo, shas)
    small = [s for s in shas if sizes.get(s, SHOWN_MAX + 1) <= SHOWN_MAX]
    result = []
    for change in changes:
        budget.stop()
        sides = [s for s in (change.old_sha, change.new_sha) if s]
        if "160000" in (change.old_mode, change.new_mode) or "120000" in (change.old_mode, change.new_mode):
            target = "a nested repository" if "160000" in (change.old_mode, change.new_mode) else "a symbolic link"
            result.append(FileDiff(change, f"{target}: nothing to show", []))
            continue
        if change.status == "renamed" and change.old_sha == change.new_sha:
            result.append(FileDiff(change, f"moved from {change.old_path}, content unchanged", []))
            continue
        if any(s not in small for s in sides):
            if shown.picture_name(change.path) and shown.picture_name(change.old_path or change.path):
                result.append(FileDiff(change, None, [], True))  # served from /raw, which looks at the content
                continue
            biggest = max(sizes.get(s, 0) for s in sides)
            result.append(FileDiff(change, f"{human_size(biggest)}: too large to show here; download it", []))
            continue
        if budget.text <= 0:  # before reading the blobs: a long page reads no more of them
            result.append(FileDiff(change, "not shown: this page is already long; open the file to see it", []))
            continue
        blobs = repo.read_blobs(sides)
        if all(picture(repo, b) for b in blobs.values()):
            result.append(FileDiff(change, None, [], True))
            continue
        if any(lfs.is_pointer(b) for b in blobs.values()):
            result.append(FileDiff(change, "large file kept in LFS: download it to see it", []))
            continue
        if any(b"\x00" in b[:SNIFF] for b in blobs.values()):
            result.append(FileDiff(change, "binary file: download it to see it", []))
            continue
        old = blobs.get(change.old_sha or "", b"")
        new = blobs.get(change.new_sha or "", b"")
        result.append(FileDiff(change, None, unified(repo, change, old, new, budget)))
    return result


def picture(repo: GitRepo, content: bytes) -> bool:
    """Whether a blob is a picture the pages show (known by its first bytes; an LFS file's in the store)."""
    pointer = lfs.parse(content) if len(content) < lfs.POINTER_MAX else None
    if pointer is None:
        return shown.picture_type(content[: shown.PICTURE_HEAD]) is not None
    try:
        with lfs.object_path(repo.git_dir, pointer[0]).open("rb") as handle:
            return shown.picture_type(handle.read(shown.PICTURE_HEAD)) is not None
    except OSError:  # not in this machine's LFS store
        return False


def unified(repo: GitRepo, change: Change, old: bytes, new: bytes, budget: Budget | None = None) -> list[Line]:
    """git's own diff of two blobs (C speed on large files), then word-level highlights per changed pair."""
    if change.old_sha and change.new_sha:
        out = repo.git("diff", "--no-color", "--no-ext-diff", "--no-textconv", "-U3", change.old_sha,
                       change.new_sha, check=False).stdout
        text = out.decode("utf-8", "replace").split("\n")
        while text and not text[0].startswith("@@"):
            text.pop(0)
    else:  # added or deleted: every line is one
        body = (new or old).decode("utf-8", "replace")
        mark = "+" if change.new_sha else "-"
        lines = body.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        count = len(lines)
        header = f"@@ -0,0 +1,{count} @@" if mark == "+" else f"@@ -1,{count} +0,0 @@"
        text = [header, *(mark + line for line in lines)]
    budget = budget or Budget()
    budget.text -= sum(len(line) for line in text)
    return highlight(parse_hunks(text), budget)


def parse_hunks(text: list[str]) -> list[tuple[str, int | None, int | None, str]]:
    """(kind, old line number, new line number, text) of a unified diff's hunks."""
    rows: list[tuple[str, int | None, int | None, str]] = []
    old_no = new_no = 0
    for line in text:
        match = _HUNK.match(line)
        if match:
            old_no, new_no = int(match.group(1)), int(match.group(2))
            rows.append(("hunk", None, None, f"from line {max(1, new_no)}"))
            continue
        if line.startswith("\\"):
            continue  # "\ No newline at end of file"
        if line.startswith("+"):
            rows.append(("add", None, new_no, line[1:]))
            new_no += 1
        elif line.startswith("-"):
            rows.append(("del", old_no, None, line[1:]))
            old_no += 1
        elif line.startswith(" "):
            rows.append(("context", old_no, new_no, line[1:]))
            old_no += 1
            new_no += 1
    return rows


def highlight(rows: list[tuple[str, int | None, int | None, str]], budget: Budget | None = None) -> list[Line]:
    """Lines with the words that changed marked, pairing each run of removed lines with the added run after it."""
    budget = budget or Budget()
    lines: list[Line] = []
    index = 0
    while index < len(rows):
        kind = rows[index][0]
        if kind != "del":
            _, old_no, new_no, text = rows[index]
            lines.append(Line(kind, old_no, new_no, (Segment(text, False),)))
            index += 1
            continue
        dels = []
        while index < len(rows) and rows[index][0] == "del":
            dels.append(rows[index])
            index += 1
        adds = []
        while index < len(rows) and rows[index][0] == "add":
            adds.append(rows[index])
            index += 1
        pairs = min(len(dels), len(adds))
        old_segments, new_segments = [], []
        for number in range(pairs):
            budget.stop()
            left, right = words(dels[number][3], adds[number][3], budget)
            old_segments.append(left)
            new_segments.append(right)
        for number, row in enumerate(dels):
            segs = old_segments[number] if number < pairs else (Segment(row[3], False),)
            lines.append(Line("del", row[1], None, segs))
        for number, row in enumerate(adds):
            segs = new_segments[number] if number < pairs else (Segment(row[3], False),)
            lines.append(Line("add", None, row[2], segs))
    return lines


def words(old: str, new: str, budget: Budget | None = None) -> tuple[tuple[Segment, ...], tuple[Segment, ...]]:
    """Both lines cut into segments, the words that differ marked, in bounded time: the common start and
    end are found in linear time, and only a middle of at most PAIR_CELLS token pairs is word-diffed;
    a larger middle is marked whole."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    start = 0
    most = min(len(a), len(b))
    while start < most and a[start] == b[start]:
        start += 1
    end = 0
    while end < most - start and a[len(a) - 1 - end] == b[len(b) - 1 - end]:
        end += 1
    mid_a, mid_b = a[start : len(a) - end], b[start : len(b) - end]
    cells = len(mid_a) * len(mid_b)
    left: list[Segment] = [Segment("".join(a[:start]), False)] if start else []
    right: list[Segment] = [Segment("".join(b[:start]), False)] if start else []
    if cells and (budget is None or budget.cells >= cells) and cells <= PAIR_CELLS:
        if budget is not None:
            budget.cells -= cells
        matcher = difflib.SequenceMatcher(None, mid_a, mid_b, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if i2 > i1:
                left.append(Segment("".join(mid_a[i1:i2]), tag != "equal"))
            if j2 > j1:
                right.append(Segment("".join(mid_b[j1:j2]), tag != "equal"))
    else:  # too many pairs to compare here: the whole middle is marked
        if mid_a:
            left.append(Segment("".join(mid_a), True))
        if mid_b:
            right.append(Segment("".join(mid_b), True))
    if end:
        left.append(Segment("".join(a[len(a) - end :]), False))
        right.append(Segment("".join(b[len(b) - end :]), False))
    return tuple(left), tuple(right)


def side_by_side(lines: list[Line]) -> list[Row]:
    """The unified lines as rows: context on both sides, removed lines left beside the added lines right."""
    rows: list[Row] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.kind == "hunk":
            rows.append(Row(None, None, line.segments[0].text))
            index += 1
        elif line.kind == "context":
            rows.append(Row(line, line))
            index += 1
        else:
            dels, adds = [], []
            while index < len(lines) and lines[index].kind == "del":
                dels.append(lines[index])
                index += 1
            while index < len(lines) and lines[index].kind == "add":
                adds.append(lines[index])
                index += 1
            for number in range(max(len(dels), len(adds))):
                rows.append(Row(dels[number] if number < len(dels) else None,
                                adds[number] if number < len(adds) else None))
    return rows
