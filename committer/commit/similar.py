"""Moves with edits: a deleted file and an added one at least half alike are a rename, as git counts them.

Exact moves (the same blob id) are paired first (ChangeSet.pair_exact). What is left unpaired on
both sides is compared the way git's rename detection does: each content is cut into chunks (a line, or
64 bytes of a long line), and the share of bytes in chunks both sides have, over the larger size, is the
similarity; at SIMILAR_SCORE or more the two are a rename. basic-memory moving a note and rewriting its
`permalink:` line, or a folder moved while its notes are touched, stays one history per note, and the
deletion guard counts only what is still unpaired.

The search is bounded, so a huge batch costs no more than before: only regular files (no symlinks, no
LFS pointers) of at most SIMILAR_BYTES are compared; nothing is compared when either side has more than
SIMILAR_FILES unpaired files, and at most SIMILAR_TOTAL bytes are read on each side; pairs of the same
file name are scored first (a moved folder keeps its names; a name common to many folders is told apart
by its folders), and every other pair only while the two sides make at most SIMILAR_PAIRS pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from committer.commit.changes import ADDED, DELETED, ChangeSet
from committer.core import fsio, logs
from committer.git import lfs
from committer.git.objects import MODE_EXEC, MODE_FILE
from committer.git.repo import GitRepo
from committer.git.trees import blob_sizes

log = logs.get(__name__)

SIMILAR_SCORE = 0.5  # git's default rename threshold (-M50%)
SIMILAR_BYTES = 1 << 20
SIMILAR_FILES = 1000  # git's diff.renameLimit
SIMILAR_PAIRS = 40_000
_CHUNK = 64
_SAME_NAME_GROUP = 64  # pairs of one name scored at most; a commoner name is told apart by its folders
# Bytes read to compare, on each side: the fingerprints of 32 MiB of short lines take a few hundred MB.
SIMILAR_TOTAL = 32 << 20
_READ_AT_ONCE = 64  # blobs read through one cat-file: at most 64 MiB in memory at a time


@dataclass(frozen=True)
class Print:
    """A content as rename detection sees it: its size and the bytes in each distinct chunk."""

    size: int
    chunks: Mapping[int, int]


def fingerprint(data: bytes) -> Print:
    """Chunks of a line (or of 64 bytes of a longer one), by hash, with the bytes each covers."""
    chunks: dict[int, int] = {}
    start, end = 0, len(data)
    while start < end:
        stop = data.find(b"\n", start, start + _CHUNK)
        stop = min(start + _CHUNK, end) if stop < 0 else stop + 1
        key = hash(data[start:stop])
        chunks[key] = chunks.get(key, 0) + stop - start
        start = stop
    return Print(len(data), chunks)


def score(a: Print, b: Print) -> float:
    """The share of the larger content found in the other (0 to 1)."""
    larger = max(a.size, b.size)
    if larger == 0 or min(a.size, b.size) < larger * SIMILAR_SCORE:
        return 0.0
    small, big = (a.chunks, b.chunks) if len(a.chunks) <= len(b.chunks) else (b.chunks, a.chunks)
    common = sum(min(n, big[key]) for key, n in small.items() if key in big)
    return common / larger


def _name(path: str) -> str:
    return path.rpartition("/")[2]


def pair_similar(deleted: Mapping[str, Print], added: Mapping[str, Print]) -> dict[str, str]:
    """Deleted path -> added path for pairs at least SIMILAR_SCORE alike, best first, each file in one pair
    at most; same-name pairs before the rest. Pure and deterministic."""
    if not deleted or not added or len(deleted) > SIMILAR_FILES or len(added) > SIMILAR_FILES:
        return {}
    pairs: dict[str, str] = {}
    _greedy(pairs, deleted, added, _same_names(sorted(deleted), sorted(added)))
    rest_old = [p for p in deleted if p not in pairs]
    taken = set(pairs.values())
    rest_new = [p for p in added if p not in taken]
    if rest_old and rest_new and len(rest_old) * len(rest_new) <= SIMILAR_PAIRS:
        _greedy(pairs, deleted, added, [(old, new) for old in rest_old for new in rest_new])
    return pairs


def _suffix(path: str, depth: int) -> str:
    return "/".join(path.split("/")[-depth:])


def _same_names(old: list[str], new: list[str]) -> list[tuple[str, str]]:
    """Pairs of the same file name; where one name has many files on both sides (`index.md` in every
    folder), the same last two, three or four path components instead, so a moved folder pairs its own
    files and the pairs stay few."""
    found: list[tuple[str, str]] = []
    groups = [(old, new)]
    for depth in range(1, 5):
        deeper = []
        for olds, news in groups:
            by_key: dict[str, tuple[list[str], list[str]]] = {}
            for path in olds:
                by_key.setdefault(_suffix(path, depth), ([], []))[0].append(path)
            for path in news:
                by_key.setdefault(_suffix(path, depth), ([], []))[1].append(path)
            for sources, targets in by_key.values():
                if len(sources) * len(targets) <= _SAME_NAME_GROUP:
                    found += [(a, b) for a in sources for b in targets]
                elif sources and targets:
                    deeper.append((sources, targets))
        groups = deeper
        if len(found) >= SIMILAR_PAIRS:
            break
    return found[:SIMILAR_PAIRS]


def _greedy(pairs: dict[str, str], deleted: Mapping[str, Print], added: Mapping[str, Print],
            candidates: Iterable[tuple[str, str]]) -> None:
    """Score the candidate pairs (those with both sides fingerprinted) and take them best first."""
    scored = []
    for old, new in candidates:
        if old not in deleted or new not in added:
            continue
        value = score(deleted[old], added[new])
        if value >= SIMILAR_SCORE:
            scored.append((-value, old, new))
    taken = set(pairs.values())
    for _value, old, new in sorted(scored):
        if old not in pairs and new not in taken:
            pairs[old] = new
            taken.add(new)


def pair_moves(repo: GitRepo, changes: ChangeSet) -> dict[str, str]:
    """Deleted path -> added path of the moves with edits of this change: a similar content. Moves of the
    same content were paired as the pass ended (ChangeSet.pair_exact): what is left is compared."""
    renames: dict[str, str] = {}
    old = changes.deleted
    if not old or not changes.added:
        return renames
    if len(old) > SIMILAR_FILES:
        return renames
    targets: set[str] = set()
    new: dict[str, str] = {}
    regular: dict[str, str] = {}  # the unpaired deletions of regular files
    for change in changes.changes():  # one pass over the records, which may be on disk
        if change.mode not in (MODE_FILE, MODE_EXEC):
            continue
        if change.kind == ADDED and not change.lfs and change.path not in targets:
            new[change.path] = change.sha
            if len(new) > SIMILAR_FILES:
                return renames
        elif change.kind == DELETED and change.path in old:
            regular[change.path] = change.sha
    if not new or not regular:
        return renames
    try:
        similar = pair_similar(_deleted_prints(repo, regular), _added_prints(repo, new))
    except OSError as exc:  # the data directory went away meanwhile: no move is paired by likeness
        log.warning("renames_not_compared", error=str(exc))
        return renames
    return {**renames, **similar}


def _deleted_prints(repo: GitRepo, old: Mapping[str, str]) -> dict[str, Print]:
    """Fingerprints of HEAD's content of the deleted regular files small enough to compare."""
    sizes = blob_sizes(repo, old.values())
    wanted: dict[str, str] = {}
    total = 0
    for path, sha in sorted(old.items()):
        size = sizes.get(sha, SIMILAR_BYTES + 1)
        if size <= SIMILAR_BYTES and total + size <= SIMILAR_TOTAL:
            wanted[path] = sha
            total += size
    shas = sorted(set(wanted.values()))
    prints: dict[str, Print] = {}
    for start in range(0, len(shas), _READ_AT_ONCE):
        for sha, data in repo.read_blobs(shas[start : start + _READ_AT_ONCE]).items():
            if lfs.parse(data) is None:  # an LFS pointer says nothing of its file's content
                prints[sha] = fingerprint(data)
    return {p: prints[sha] for p, sha in wanted.items() if sha in prints}


def _added_prints(repo: GitRepo, new: Mapping[str, str]) -> dict[str, Print]:
    """Fingerprints of the added files as they are on disk now (reached without a symlink)."""
    prints: dict[str, Print] = {}
    total = 0
    with fsio.Tree(repo.data_dir) as tree:
        for path in sorted(new):
            try:
                size = tree.lstat(path).st_size
                if size > SIMILAR_BYTES or total + size > SIMILAR_TOTAL:
                    continue
                data = tree.read(path, SIMILAR_BYTES + 1)
                total += len(data)
                prints[path] = fingerprint(data)
            except OSError:
                continue  # gone or changed into something else since: not compared
    return prints
