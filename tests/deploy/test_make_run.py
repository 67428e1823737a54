"""`make run`, read with `make -n`: it installs only what running needs and serves the history pages on loopback."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make: not installed")


def planned(*targets: str) -> str:
    """What make would run for the targets on a fresh clone (-B: every stamp out of date)."""
    proc = subprocess.run(["make", "-n", "-B", "-C", str(ROOT), *targets], capture_output=True, text=True,
                          check=True, timeout=60)
    return proc.stdout


def test_make_run_installs_no_test_tools_and_serves_the_pages_on_loopback() -> None:
    commands = planned("run")
    installs = [line for line in commands.splitlines() if " install " in line and "pip" in line]
    assert any(line.endswith("pip install --quiet -e .") for line in installs), installs
    assert not any("[test]" in line for line in installs), installs
    assert "--http 127.0.0.1:9464" in commands
    assert "history pages: http://127.0.0.1:9464/" in commands


def test_make_test_adds_the_test_tools_on_top() -> None:
    commands = planned("test")
    assert "pip install --quiet -e '.[test]'" in commands


def test_make_run_hints_at_the_command_without_flags() -> None:
    hint = next(line for line in planned("run").splitlines() if "from a shell" in line)
    assert hint.rstrip("\"'").endswith("/committer log") and "--data-dir" not in hint, hint
