"""Which repositories are due for a sync: pure decisions on rows and times handed in (the beat process reads
the rows and sends the syncs; nothing here touches the database, the queue or the clock).

Every repository that is active with a source, or failed after a migration that once succeeded (so a later
sync can recover it), is synced every `interval` seconds (its own, else the fleet's). The syncs are spread
over the interval: each repository has its own phase in it, derived from its id, and its slots are
`phase + k * interval`. A repository is due when the latest slot that has begun is later than the last time
a task was sent for it (or, before any, its last sync), and no task of its is pending, running or retrying.
After the beat was down, each repository that missed a slot is sent one sync, not one a missed slot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# The beat's period: how late a sync may start after its slot, and how soon a dead worker's task is seen.
TICK = 5.0
# Spreads consecutive ids evenly over the interval (the golden ratio's fraction: a low-discrepancy sequence).
_SPREAD = 0.6180339887498949
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Candidate:
    """A repository the scheduler may sync: its id, its interval in seconds, its last sync (None: never)."""

    repository_id: int
    interval: float
    last_synced_at: datetime | None = None


def phase(repository_id: int, interval: float) -> float:
    """Seconds into each interval at which this repository's slot comes: stable, spread over the interval."""
    return (repository_id * _SPREAD) % 1.0 * interval


def last_slot(repository_id: int, interval: float, at: datetime) -> datetime:
    """The latest of the repository's slots that has begun by `at`."""
    elapsed = (at - _EPOCH).total_seconds() - phase(repository_id, interval)
    return at - timedelta(seconds=elapsed % interval)


def due(candidates: Iterable[Candidate], busy: set[int], last_sent: Mapping[int, datetime],
        at: datetime) -> list[int]:
    """Ids to sync now, in id order. `busy`: repositories with a task pending, running or retrying;
    `last_sent`: when the newest task of each repository was created (any kind: a migration counts)."""
    chosen = []
    for candidate in candidates:
        if candidate.repository_id in busy or candidate.interval <= 0:
            continue
        known = [t for t in (last_sent.get(candidate.repository_id), candidate.last_synced_at) if t is not None]
        if not known or max(known) < last_slot(candidate.repository_id, candidate.interval, at):
            chosen.append(candidate.repository_id)
    return sorted(chosen)
