"""committer doctor: a healthy and a broken set-up, each finding with a fix, settings with their source."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Layout, committer

pytestmark = pytest.mark.integration


def checks(report: dict[str, object]) -> dict[str, dict[str, str]]:
    found = report["checks"]
    assert isinstance(found, list)
    return {c["name"]: c for c in found}


def test_a_healthy_set_up(layout: Layout, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(mirror)], check=True)
    (layout.data / "a.md").write_text("a")
    committer("init", *layout.args())
    proc = committer("doctor", "--json", *layout.args(), "--remote", f"file://{mirror}",
                     env={"COMMITTER_DEBOUNCE": "3s"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    found = checks(report)
    assert report["ok"] is True
    assert found["git"]["status"] == "ok" and found["data dir"]["status"] == "ok"
    assert found["git dir"]["status"] == "ok" and found["remote"]["status"] == "ok"
    assert "does not exist yet" in found["remote"]["detail"] or "no branch" in found["remote"]["detail"]
    assert report["settings"]["debounce"] == {"value": 3.0, "source": "env", "env": "COMMITTER_DEBOUNCE"}
    assert report["settings"]["data_dir"]["source"] == "flag"
    assert report["settings"]["max_delay"]["source"] == "default"
    human = committer("doctor", *layout.args()).stdout
    assert "settings (value, source):" in human and "ok    git" in human


def test_a_broken_set_up_fails_with_fixes(layout: Layout, tmp_path: Path) -> None:
    token_dir = tmp_path / "unreadable-token"
    token_dir.mkdir()
    proc = committer("doctor", "--json", "--data-dir", str(tmp_path / "missing"), "--git-dir", str(layout.git_dir),
                     "--remote", f"file://{tmp_path / 'no-such-remote.git'}")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    found = checks(report)
    assert report["ok"] is False
    assert found["data dir"]["status"] == "fail" and found["data dir"]["fix"]
    assert found["remote"]["status"] == "fail" and "not_found" in found["remote"]["detail"]
    assert found["remote"]["fix"]


def test_credentials_in_the_remote_url_are_redacted_and_an_unreachable_remote_fails(layout: Layout) -> None:
    proc = committer("doctor", "--json", *layout.args(), "--remote", "https://user:hunter2-secret@127.0.0.1:9/x.git")
    report = json.loads(proc.stdout)
    assert "hunter2-secret" not in proc.stdout + proc.stderr
    assert report["settings"]["remote"]["value"] == "https://***@127.0.0.1:9/x.git"
    assert checks(report)["remote"]["status"] == "fail"


def test_how_pulls_happen_and_a_webhook_without_its_secret(layout: Layout, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(mirror)], check=True)
    base = ["doctor", "--json", *layout.args(), "--remote", f"file://{mirror}"]
    found = checks(json.loads(committer(*base).stdout))
    assert found["pull"]["status"] == "ok" and "only by `committer pull`" in found["pull"]["detail"]
    found = checks(json.loads(committer(*base, env={"COMMITTER_HTTP": "9464", "COMMITTER_PULL_INTERVAL": "1m"}).stdout))
    assert found["webhook"]["status"] == "warn" and "COMMITTER_WEBHOOK_SECRET" in found["webhook"]["fix"]
    assert "every 60s" in found["pull"]["detail"]
    secret = {"COMMITTER_HTTP": "9464", "COMMITTER_WEBHOOK_SECRET": "s3cret-value"}
    report = json.loads(committer(*base, env=secret).stdout)
    found = checks(report)
    assert "webhook" not in found and "on the push webhook" in found["pull"]["detail"]
    assert "s3cret-value" not in json.dumps(report)
