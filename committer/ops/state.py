"""The state file (`<git_dir>/committer/state.json`): what the daemon and the commands tell `status`,
and what a restart takes back (the hold, the held files, the pull record). One schema, one writer."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from committer.commit.committer import Committer
from committer.commit.step import OnCommit
from committer.core import events, fsio
from committer.core.settings import Settings
from committer.git.layout import state_dir
from committer.git.repo import GitRepo
from committer.policy.filters import PathFilter
from committer.policy.guard import Hold
from committer.sync import conflicts, frontmatter
from committer.sync.pullstate import PullRecord

STATE_FILE = "state.json"


def write_state(git_dir: Path, state: dict[str, Any]) -> None:
    """Replace the state file atomically: readers see the old or the new one, never a mix."""
    directory = state_dir(git_dir)
    directory.mkdir(parents=True, exist_ok=True)
    fsio.write_atomic(directory / STATE_FILE, (json.dumps(state, indent=1, sort_keys=True) + "\n").encode())


def read_state(git_dir: Path) -> dict[str, Any]:
    """The last state written; empty when there is none or it cannot be read."""
    try:
        value = json.loads((state_dir(git_dir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def load_parts(
    settings: Settings, repo: GitRepo, pfilter: PathFilter, state: dict[str, Any], on_commit: OnCommit | None = None,
    emit: events.Emit = events.nothing,
) -> tuple[Committer, PullRecord]:
    """The commit side and the pull record of a repository, as the state file left them; `emit` is told
    what happens (events out)."""
    record = PullRecord(state.get("pull") or {})
    committer = Committer(settings, repo, pfilter, Hold.load(state.get("hold_record")), on_commit,
                          kept_ignored=record.kept_ignored, emit=emit)
    committer.held.keep(state.get("held_files"))
    committer.step.pinned.update(record.unwritable())
    committer.step.beside.on_conflict = functools.partial(conflicts.remember, record)  # listed in status
    if settings.conflict_frontmatter:
        committer.step.beside.retitle = frontmatter.distinct
    return committer, record


def parts_state(committer: Committer, record: PullRecord) -> dict[str, Any]:
    """The state file's keys the commit side and the pull record own."""
    hold = committer.holds.hold
    return {
        "head": committer.head,
        "last_commit_at": committer.step.last_commit_at,
        "held_files": committer.held.listing(),
        "held": hold.status() if hold else None,
        "hold_record": hold.record() if hold else None,
        "pull": record.snapshot(),
    }


def save_parts(git_dir: Path, committer: Committer, record: PullRecord) -> None:
    """A command's changes to the state: its own parts over what was there (a daemon writes it whole)."""
    state = read_state(git_dir)
    state.update({k: v for k, v in parts_state(committer, record).items() if k != "last_commit_at" or v})
    write_state(git_dir, state)
