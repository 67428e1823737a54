"""Dealing with what the safety rules hold, the same from the pages and the CLI: put held deletions back
into the data directory (the restore's writing), and commit a file held for a secret once, as it is, when
a person says it is not one (`committer allow-secret`).

Putting back never overwrites: a held file that is in the data directory again (back, or rewritten) stays
as it is and is named. A file said not to be a secret is committed only with the content that was reviewed
(its blob id): one that changed since is refused, and nothing is committed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from committer.commit.committer import Committer
from committer.core import fsio, logs
from committer.core.errors import CommitterError, ConfigError
from committer.core.paths import display_path
from committer.git.objects import blob_id
from committer.ops import restore
from committer.policy import guard, secrets

log = logs.get("committer.holds")

ALLOWED_KEY = "allowed_secret"  # the BM-Meta key naming the file committed although it looked like a secret
ALLOW_OP = "allow-secret"
SCANNED_MOST = 100_000_000  # bytes read to look at a file when no size setting bounds it


class Changed(CommitterError):
    """The file is not what was reviewed any more: nothing is committed."""


def put_back(committer: Committer) -> dict[str, Any]:
    """Write each held deletion back from the last commit; those here again are kept as they are. The
    hold is released for every file that is back."""
    hold = committer.holds.hold
    if hold is None:
        raise CommitterError("no deletions are on hold: there is nothing to put back")
    if hold.reason != guard.MAX_DELETE:
        raise CommitterError(_not_put_back(hold.reason))
    entries = committer.repo.ls_tree(committer.head, sorted(hold.paths))
    actions: list[restore.Action] = []
    kept: list[dict[str, str]] = []
    with fsio.Tree(committer.repo.data_dir) as tree:
        for path in sorted(hold.paths):
            entry = entries.get(path)
            parent = fsio.split(path)[0]
            link = tree.first_link(parent) if parent else None
            if entry is None:
                kept.append({"path": path, "why": "it is not in the last commit"})
            elif link is not None:
                kept.append({"path": path, "why": f"{display_path(link)} is a symbolic link now: nothing is "
                                                  "written through it"})
            elif tree.exists(path):
                kept.append({"path": path, "why": "it is in the data folder again (back or rewritten since): "
                                                  "left as it is, not overwritten"})
            else:
                actions.append(restore.Action("write", path, entry))
    failed: dict[str, str] = {}
    written = restore.apply(committer, actions, failed)
    committer.holds.release()
    left = committer.holds.hold
    log.info("hold_put_back", reason=hold.reason, written=len(written), kept=len(kept), failed=len(failed),
             still_held=len(left.paths) if left else 0)
    return {
        "before": hold.status(),
        "written": len(written),
        "paths": [display_path(p) for p in written[:guard.STATUS_PATHS]],
        "kept": [{"path": display_path(k["path"]), "why": k["why"]} for k in kept],
        "failed": [{"path": display_path(p), "reason": r} for p, r in sorted(failed.items())],
        "held": left.status() if left else None,
    }


def _not_put_back(reason: str) -> str:
    if reason in (guard.DATA_DIR_EMPTY, guard.DATA_DIR_MISSING):
        return ("the data folder is empty or missing (unmounted?): nothing is written into it. Mount it "
                "again and the hold ends by itself; confirm the deletions only if the files are really gone")
    if reason == guard.IGNORE_RULES:
        return ("these files are still on disk: new ignore rules would take them out of the history. Change "
                "the rules back (.bmignore, ignore) to keep them, or confirm")
    return f"deletions held for {reason} cannot be put back; confirm them or wait for the files to come back"


def review(committer: Committer, path: str) -> dict[str, Any]:
    """What is in the file now: its blob id, and the kind and line of the first thing that looks like a
    secret (never the secret itself)."""
    rel = restore.normalize(path)
    if not rel:
        raise ConfigError("path", "name the file that holds the secret")
    name = display_path(rel)
    if committer.pfilter.ignored(rel):
        raise CommitterError(f"{name} is kept out by its name (ignore rules), not for its content: change the "
                             "rules (.bmignore, ignore) to let it in")
    most = committer.config.lfs_threshold or committer.config.max_file_size or SCANNED_MOST
    try:
        with fsio.Tree(committer.repo.data_dir) as tree:
            if tree.lstat(rel).st_size >= most:
                raise CommitterError(f"{name} is too large to be scanned for secrets (files of {most:,} bytes "
                                     "and more never are): it is not held for a secret")
            data = tree.read(rel, most)
    except fsio.LinkInPath as exc:
        raise CommitterError(f"{name} lies behind the symbolic link {display_path(exc.link)}: it is not read") \
            from None
    except FileNotFoundError:
        raise ConfigError("path", f"{name} is not in the data directory") from None
    except OSError as exc:
        raise CommitterError(f"{name} cannot be read: {exc.strerror or exc}") from None
    found = secrets.locate(data)
    return {
        "path": name,
        "sha": blob_id(data),
        "kind": found.kind if found else None,
        "what": secrets.described(found.kind) if found else None,
        "line": found.line if found else None,
        "held": committer.held.reasons.get(rel),
    }


def allow_secret(committer: Committer, path: str, sha: str = "", by: str = "cli") -> dict[str, Any]:
    """Commit the file once as it is, although it looks like it holds a secret; `sha`: the blob id that was
    reviewed (the file must still have it). Recorded in the trailer (`allowed_secret`) and logged."""
    rel = restore.normalize(path)
    seen = review(committer, rel)
    name = seen["path"]
    if sha and sha != seen["sha"]:
        raise Changed(f"{name} changed since it was reviewed: nothing was committed. Look at it again")
    if seen["kind"] is None:
        raise CommitterError(f"nothing in {name} looks like a secret now: it is committed as usual with its "
                             "next change")
    expected = seen["sha"]
    step = committer.step
    limits = step.limits

    def only_reviewed(data: bytes) -> str | None:
        # The reviewed content passes the scan; anything else (changed meanwhile) is scanned as always.
        return None if blob_id(data) == expected else secrets.find_secret(data)

    step.limits = dataclasses.replace(limits, find_secret=only_reviewed)
    try:
        result = committer.commit([rel], op=ALLOW_OP, extra={ALLOWED_KEY: name})
    finally:
        step.limits = limits
    entry = committer.repo.ls_tree(committer.head, [rel]).get(rel) if committer.head else None
    if entry is None or entry.sha != expected:
        raise Changed(f"{name} changed while it was being committed: nothing of it was committed. Look at it "
                      "again")
    log.warning("secret_allowed", path=name, kind=seen["kind"], line=seen["line"], sha=result.sha, by=by,
                why="a person said it is not a secret; committed once as it was reviewed")
    return {**seen, "sha": result.sha, "blob": expected, "allowed": True}
