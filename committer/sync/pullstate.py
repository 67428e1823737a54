"""What the pull side keeps between pulls and shows in status: the last fetch and pull, conflict copies, a
held or a refused update, and the files a pull brought in that the ignore rules exclude here."""

from __future__ import annotations

import copy
from typing import Any

PULL_DELETE = "pull_max_delete"
CONFLICTS_KEPT = 50  # conflict copies listed in status, newest last


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

    def kept_ignored(self) -> list[str]:
        """Files a pull brought in although the ignore rules exclude them here: never untracked."""
        return [str(p) for p in self.get("kept_ignored") or ()]

    def snapshot(self) -> dict[str, Any]:
        """A copy for the state file."""
        return copy.deepcopy(dict(self))
