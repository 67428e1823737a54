"""The mass-deletion guard: which deletions a commit may carry, and which are held. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

MAX_DELETE = "max_delete"
DATA_DIR_EMPTY = "data_dir_empty"
DATA_DIR_MISSING = "data_dir_missing"
IGNORE_RULES = "ignore_rules"
REASONS = {
    MAX_DELETE: "more files would be deleted at once than max_delete allows",
    DATA_DIR_EMPTY: "the data directory is empty although the repository tracks files (unmounted?)",
    DATA_DIR_MISSING: "the data directory is missing",
    IGNORE_RULES: "new ignore rules would remove more tracked files than max_delete allows",
}
STATUS_PATHS = 50


@dataclass(frozen=True)
class Hold:
    """Deletions kept out of history until confirmed, or until the files come back."""

    reason: str
    paths: frozenset[str]
    since: str

    def status(self) -> dict[str, Any]:
        """The `held` object of status: reason, the first paths, count, since, and its key."""
        ordered = sorted(self.paths)
        return {
            "reason": self.reason,
            "paths": ordered[:STATUS_PATHS],
            "count": len(self.paths),
            "since": self.since,
            "key": key_of(ordered),
        }

    def record(self) -> dict[str, Any]:
        """Everything needed to restore the hold after a restart."""
        return {"reason": self.reason, "paths": sorted(self.paths), "since": self.since}

    @staticmethod
    def load(value: object) -> Hold | None:
        """The hold a state file recorded, or None when there is none or it is malformed."""
        if not isinstance(value, Mapping):
            return None
        paths, reason, since = value.get("paths"), value.get("reason"), value.get("since")
        if not isinstance(paths, list) or reason not in REASONS or not isinstance(since, str):
            return None
        return Hold(reason, frozenset(p for p in paths if isinstance(p, str)), since)


def key_of(paths: Iterable[str]) -> str:
    """A short fingerprint of a hold's paths: a confirmation from the pages names the hold it was shown, so
    a hold that grew or shrank since is not confirmed unseen."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Decision:
    """The deletions a commit may carry now, and the hold after this batch."""

    allowed: frozenset[str]
    hold: Hold | None
    new_hold: bool


def decide(
    deletions: Iterable[str],
    *,
    max_delete: int,
    data_dir_state: str,
    hold: Hold | None,
    now: str,
    reason: str = MAX_DELETE,
) -> Decision:
    """Apply the guard to one batch's deletions.

    data_dir_state is "ok", "empty" or "missing". While a hold is active every further deletion joins
    it, so a mass deletion cannot slip through in slices smaller than max_delete.
    """
    wanted = frozenset(deletions)
    if not wanted:
        return Decision(frozenset(), hold, False)
    if data_dir_state != "ok":
        why = DATA_DIR_MISSING if data_dir_state == "missing" else DATA_DIR_EMPTY
        return _hold(wanted, hold, why, now)
    if hold is not None:
        return Decision(frozenset(), replace(hold, paths=hold.paths | wanted), False)
    if len(wanted) > max_delete:
        return _hold(wanted, None, reason, now)
    return Decision(wanted, None, False)


def _hold(wanted: frozenset[str], hold: Hold | None, reason: str, now: str) -> Decision:
    if hold is None:
        return Decision(frozenset(), Hold(reason, wanted, now), True)
    return Decision(frozenset(), replace(hold, paths=hold.paths | wanted), False)


def pair_renames(added: Mapping[str, str], deleted: Mapping[str, str]) -> dict[str, str]:
    """Deleted path -> added path for deletions whose content (blob id) was added elsewhere: moves.

    Within one content, a pair with the same file name is taken first (a moved folder keeps its
    names), then the rest in path order. Pure and deterministic.
    """
    gone: dict[str, list[str]] = {}
    for path, sha in deleted.items():
        gone.setdefault(sha, []).append(path)
    new: dict[str, list[str]] = {}
    for path, sha in added.items():
        if sha in gone:
            new.setdefault(sha, []).append(path)
    pairs: dict[str, str] = {}
    for sha, targets in new.items():
        sources = sorted(gone[sha])
        by_name: dict[str, list[str]] = {}
        for old in sources:
            by_name.setdefault(old.rpartition("/")[2], []).append(old)
        rest = []
        for target in sorted(targets):
            candidates = by_name.get(target.rpartition("/")[2])
            if candidates:
                old = candidates.pop(0)
                pairs[old] = target
            else:
                rest.append(target)
        left = [old for old in sources if old not in pairs]
        pairs.update(zip(left, rest, strict=False))
    return pairs


def release(hold: Hold | None, still_deleted: Callable[[str], bool]) -> Hold | None:
    """Drop held paths whose deletion no longer stands (the file came back); None when none remain."""
    if hold is None:
        return None
    remaining = frozenset(p for p in hold.paths if still_deleted(p))
    if not remaining:
        return None
    return hold if remaining == hold.paths else replace(hold, paths=remaining)
