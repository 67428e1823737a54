"""What the commit step uses of the settings, and nothing else: built from `Settings` in one place."""

from __future__ import annotations

from dataclasses import dataclass

from committer.core.settings import Settings


@dataclass(frozen=True)
class CommitConfig:
    """The commit step's own settings: who commits, how large a commit gets, what goes through LFS or is held."""

    author: tuple[str, str] = ("committer", "committer@localhost")  # name, email
    max_delete: int = 100
    max_batch_files: int = 10_000
    lfs_threshold: int = 10_000_000
    max_file_size: int = 100_000_000
    secret_allow: tuple[str, ...] = ()  # gitignore patterns of files never scanned for secrets
    bisync_conflicts: str = "fold"  # rclone bisync's conflict files: folded into committer's form, or kept
    settled: float = 0.5  # seconds a conflict file is left alone before it is folded (below the debounce)


def commit_config(settings: Settings) -> CommitConfig:
    """The commit step's part of the settings."""
    return CommitConfig(
        author=(settings.author_name, settings.author_email), max_delete=settings.max_delete,
        max_batch_files=settings.max_batch_files, lfs_threshold=settings.lfs_threshold,
        max_file_size=settings.max_file_size, secret_allow=settings.secret_allow,
        bisync_conflicts=settings.bisync_conflicts, settled=min(0.5, settings.debounce / 2),
    )
