"""Where committer keeps its own files inside the git dir."""

from __future__ import annotations

from pathlib import Path

STATE_DIR = "committer"


def state_dir(git_dir: Path) -> Path:
    """Our own folder inside the git directory."""
    return git_dir / STATE_DIR
