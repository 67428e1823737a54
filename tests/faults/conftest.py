"""Fixtures of the fault-injection suite: tagged daemons reaped at the end, a git wrapper, a remote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import Daemons, GitWrapper, bare_remote


@pytest.fixture
def daemons() -> Iterator[Daemons]:
    """Start daemons with `daemons.start(layout, ...)`; every process they left behind is killed after."""
    manager = Daemons()
    yield manager
    manager.close()


@pytest.fixture
def git_wrapper(tmp_path: Path) -> GitWrapper:
    return GitWrapper(tmp_path)


@pytest.fixture
def remote_url(tmp_path: Path) -> str:
    return bare_remote(tmp_path / "remote.git")
