"""The daemon's HTTP endpoints, scraped for real while it runs."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import DaemonProcess, Layout, tree_files, wait_for

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_health_readiness_and_metrics_while_running(layout: Layout, start_daemon: Start, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(mirror)], check=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    daemon = start_daemon("--http", f"127.0.0.1:{port}", "--remote", f"file://{mirror}",
                          env={"COMMITTER_PUSH_INTERVAL": "200ms"})
    assert daemon.events("http_listening")
    status, body = get(f"{base}/readyz")
    assert status == 200 and json.loads(body)["ready"] is True
    # The push and pull loops start just after daemon_ready: until their threads run, /healthz says 503.
    status, body = wait_for(lambda: (answer := get(f"{base}/healthz"))[0] == 200 and answer, what="/healthz 200")
    assert json.loads(body)["watcher"] == "alive" and json.loads(body)["push_loop"] == "alive"
    (layout.data / "a.md").write_text("scraped")
    wait_for(lambda: "a.md" in tree_files(mirror, "refs/heads/main"), what="push")

    def pushed() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        found = samples(get(f"{base}/metrics")[1])
        counted = found.get(("committer_pushes_total", (("kind", "none"), ("result", "ok"))))
        # The pending gauge follows the push counter by one ref read: wait for both.
        return found if counted and found.get(("committer_pending_commits", ())) == 0 else None

    found = wait_for(pushed, what="a push counted and nothing pending")
    assert found[("committer_commits_total", (("op", "batch"),))] >= 1
    assert found[("committer_last_push_success_timestamp_seconds", ())] > 0
    assert get(f"{base}/nope")[0] == 404
    assert daemon.stop() == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{base}/healthz", timeout=2)


def test_a_taken_port_is_one_clear_error(layout: Layout) -> None:
    from tests.conftest import committer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        proc = committer("run", *layout.args(), "--http", f"127.0.0.1:{s.getsockname()[1]}")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "cannot listen" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("content", [None, "", "short"])
def test_a_bad_ui_token_file_is_one_clear_line(layout: Layout, tmp_path: Path, content: str | None) -> None:
    from tests.conftest import committer

    token_file = tmp_path / "ui_token"
    if content is not None:
        token_file.write_text(content)
    proc = committer("run", *layout.args(), "--http", f"0.0.0.0:{free_port()}", "--ui-token-file", str(token_file))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "ui-token-file" in last and str(token_file) in last
