"""Nothing written to the data directory is lost, whatever moment the daemon is killed at.

A writer thread keeps creating, rewriting, renaming and deleting files while the daemon is
SIGKILLed at random moments and restarted. The seed is printed; COMMITTER_FAULT_SEED=<seed>
replays the same writes and the same kill schedule (timing still varies). `soak.py` is the long
version of this test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.harness import ChaosConfig, run_chaos, seed_from_env

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def test_random_kill_9_under_continuous_writes_loses_nothing(tmp_path: Path) -> None:
    seed = seed_from_env()
    print(f"\nfault seed: {seed} (replay with COMMITTER_FAULT_SEED={seed})")
    result = run_chaos(ChaosConfig(seed=seed, kills=5, duration=18.0, max_files=300), tmp_path,
                       say=lambda line: print(line))
    print(result.summary())
    assert len(result.kills) >= 4
    assert result.operations > 200, "the writer barely wrote anything"
    assert not result.lost, f"seed {seed}: files lost: {sorted(result.lost)[:20]}\n{result.summary()}"
    assert not result.extra, f"seed {seed}: deleted files still in HEAD: {result.extra[:20]}"
    assert not result.problems, f"seed {seed}:\n{result.summary()}"
    assert result.remote_caught_up, f"seed {seed}: the remote did not catch up"
    assert result.fsck_local is not None and result.fsck_local.ok, f"seed {seed}: {result.fsck_local}"
    assert result.fsck_local.strict_ok, f"seed {seed}: {result.fsck_local}"
    assert result.fsck_remote is not None and result.fsck_remote.ok, f"seed {seed}: {result.fsck_remote}"
    assert not result.stale_locks, f"seed {seed}: stale locks {result.stale_locks}"
    assert result.stop_code == 0
    assert result.ok, result.summary()
