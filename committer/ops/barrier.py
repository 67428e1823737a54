"""The daemon's side of `committer sync`: take what is pending now and say what the push must deliver.

The main loop has already committed the watcher's open batch (a sync is a request that commits first, with
no debounce); here the whole data directory is compared with HEAD once more (`git status`, 0.5 s for 100,000
files), because a write made just before the sync may not have reached the watcher yet (watchdog holds
inotify events for half a second to pair renames; a poll observer sees a change only at its next scan).
Callers that wait together share that scan: a sync asked before the last scan began needs none of its own.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from committer.commit.committer import Committer
from committer.core import logs
from committer.core.errors import redact
from committer.core.paths import display_path
from committer.policy.filters import NAME_RULE
from committer.sync.refs import pushed_ref

log = logs.get(__name__)

LISTED = 20  # files in the way named in one answer; the count is always given
# When each repository's last sync scan began (wall clock, as callers in other processes stamp their ask).
_SCANNED: weakref.WeakKeyDictionary[Committer, float] = weakref.WeakKeyDictionary()


def take_pending(committer: Committer, asked_at: float, scan: bool = True) -> dict[str, Any]:
    """Commit what differs from HEAD (unless a scan began after `asked_at`); the sync's payload: the commit
    that holds it, the remote and the private ref that says what the remote has, and what is in the way."""
    if scan and _SCANNED.get(committer, float("-inf")) < asked_at:
        _SCANNED[committer] = time.time()
        result = committer.reconcile()
        if result.sha is not None:
            log.info("sync_scan_committed", sha=result.sha, files=result.changes.counts.total)
    else:
        committer.refresh_head()
    settings = committer.settings
    remote = settings.remote or None
    return {
        "commit": committer.head,
        "remote": redact(remote) if remote else None,
        "pushed_ref": pushed_ref(remote, committer.repo.branch) if remote else None,
        "in_the_way": in_the_way(committer),
    }


def in_the_way(committer: Committer) -> dict[str, Any]:
    """What keeps the data directory from being wholly in the commit: a deletion hold, and files the safety
    rules kept out for their content, size or type (a file a name rule keeps out is the user's choice, not
    in the way)."""
    hold = committer.holds.hold
    files = sorted((path, reason) for path, reason in committer.held.reasons.items()
                   if not reason.startswith(NAME_RULE))
    return {
        "hold": {"reason": hold.reason, "count": len(hold.paths)} if hold is not None else None,
        "files": [{"path": display_path(path), "reason": reason} for path, reason in files[:LISTED]],
        "file_count": len(files),
    }
