"""What the pull side keeps between pulls and shows in status: the last fetch and pull, conflict copies, a
held or a refused update, a divergence left for a person (`ff-only`), the branches and pull requests of
local commits proposed instead of merged (`pull-request`), the files a pull brought in that the ignore rules
exclude here, and the remote's paths a pull could not write here."""

from __future__ import annotations

import copy
from typing import Any

PULL_DELETE = "pull_max_delete"
CONFLICTS_KEPT = 50  # conflict copies listed in status, newest last
PROPOSALS_KEPT = 20  # branches proposed as pull requests listed in status, newest last
DIVERGED = "diverged: waiting for a person"


class PullRecord(dict[str, Any]):
    """The pull side's record, kept in the state file under `pull` (one owner: the main loop)."""

    def held(self) -> dict[str, Any] | None:
        """A pull held back because it would delete more than max_delete files."""
        value = self.get("held")
        return value if isinstance(value, dict) else None

    def refused(self) -> dict[str, Any] | None:
        """A forced update of the remote, refused."""
        value = self.get("refused")
        return value if isinstance(value, dict) else None

    def diverged(self) -> dict[str, Any] | None:
        """Both sides have new commits and the pull policy merges nothing: since when, and both heads."""
        value = self.get("diverged")
        return value if isinstance(value, dict) else None

    def pull_requests(self) -> list[dict[str, Any]]:
        """The branches local commits were proposed on (`pull_policy = pull-request`), oldest first."""
        return [dict(e) for e in self.get("pull_requests") or () if isinstance(e, dict)]

    def set_pull_requests(self, entries: list[dict[str, Any]]) -> None:
        """Replace the list (the newest PROPOSALS_KEPT, and every one still open)."""
        kept = [e for n, e in enumerate(entries) if n >= len(entries) - PROPOSALS_KEPT or e.get("state") == "open"]
        self["pull_requests"] = [dict(e) for e in kept]

    def kept_ignored(self) -> list[str]:
        """Files a pull brought in although the ignore rules exclude them here: never untracked."""
        return [str(p) for p in self.get("kept_ignored") or ()]

    def unwritable(self) -> dict[str, str]:
        """Path -> reason, for the remote's paths a pull could not write here (kept in git, not on disk)."""
        items = self.get("unwritable") or []
        return {str(i["path"]): str(i.get("reason", "")) for i in items if isinstance(i, dict) and "path" in i}

    def waiting(self) -> dict[str, str]:
        """Path -> the blob id the disk held ('' for none), for LFS files whose object could not be downloaded:
        the object replaces only that."""
        items = self.get("unwritable") or []
        return {str(i["path"]): str(i["was"]) for i in items if isinstance(i, dict) and "path" in i and "was" in i}

    def set_unwritable(self, found: dict[str, str], waiting: dict[str, str] | None = None) -> None:
        """Replace the list of paths a pull could not write here."""
        was = waiting or {}
        if found:
            self["unwritable"] = [{"path": p, "reason": r, **({"was": was[p]} if p in was else {})}
                                  for p, r in sorted(found.items())]
        else:
            self.pop("unwritable", None)

    def snapshot(self) -> dict[str, Any]:
        """A copy for the state file."""
        return copy.deepcopy(dict(self))
