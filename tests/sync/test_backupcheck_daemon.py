"""The daemon verifies the remote copy every verify_interval and says so: a `verify` event, the metrics,
/healthz, status and the pages' banner; a failure is loud. And POST /sync, the barrier for programs."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from committer.git import lfs
from tests.conftest import DaemonProcess, Layout, SentEvents, committer, wait_for
from tests.daemon.test_daemon_http import free_port, get, samples
from tests.gitserver import GitHTTPServer, git_server

__all__ = ["git_server"]

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not lfs.available(), reason="git-lfs is not installed")]


def post(url: str, body: bytes = b"", content_type: str = "application/json") -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_daemon_verifies_and_a_failure_is_loud_everywhere(
    git_server: GitHTTPServer, layout: Layout, start_daemon: Callable[..., DaemonProcess], sent_events: SentEvents,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"COMMITTER_TOKEN": git_server.token, **sent_events.env()}
    daemon = start_daemon("--remote", git_server.url, "--http", f"127.0.0.1:{port}", "--verify-interval", "2s",
                 "--debounce", "60s", "--max-delay", "120s", "--push-backoff-max", "1s", env=env)
    (layout.data / "note.md").write_text("a note\n")

    status, answer = post(f"{base}/sync", b'{"wait": true, "timeout": "60s"}')
    assert status == 200 and answer["ok"] is True and answer["pushed"] is True, answer
    assert answer["commit"] == git_server.head()

    ok = sent_events.wait("verify")[0]
    assert ok["result"] == "ok" and ok["reason"] is None and ok["commit"] == git_server.head()
    metrics = samples(get(f"{base}/metrics")[1])
    assert metrics[("committer_backup_verified_timestamp_seconds", ())] > 0
    assert json.loads(get(f"{base}/healthz")[1])["backup"] == "ok"

    git_server.set_mode("503")
    failed = wait_for(lambda: [e for e in sent_events("verify") if e["result"] == "failed"], timeout=60,
                      what="a failed verify event")[0]
    assert failed["reason"] == "unreachable"
    code, body = get(f"{base}/healthz")
    health = json.loads(body)
    assert code == 200 and health["status"] == "degraded" and health["backup"] == "failed", health
    assert any("the last verify of the remote copy failed (unreachable)" in r for r in health["degraded_reasons"])
    metrics = samples(get(f"{base}/metrics")[1])
    assert metrics[("committer_backup_verify_failures_total", (("reason", "unreachable"),))] >= 1
    page = get(f"{base}/")[1].decode()
    assert "The last check that the backup can be restored failed" in page and "Last verified" in page
    shown = json.loads(committer("status", "--json", env=layout.env).stdout)
    assert shown["verified"]["reason"] == "unreachable" and shown["verified"]["last_ok_at"]

    (layout.data / "later.md").write_text("while the remote is down\n")
    status, answer = post(f"{base}/sync", b'{"wait": true, "timeout": "2s"}')
    assert status == 503 and answer["pushed"] is False, answer
    assert "the last push failed (transient)" in str(answer["reason"])

    leaving = urllib.request.Request(f"{base}/sync", data=b'{"wait": true, "timeout": "10m"}', method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        urllib.request.urlopen(leaving, timeout=2)  # a client that stops waiting: the daemon stops too
    daemon.wait_event("page_sync_client_gone", timeout=30)


def test_post_sync_takes_no_form_without_the_pages_token(
    layout: Layout, start_daemon: Callable[..., DaemonProcess],
) -> None:
    """A body a form on another site could send is refused unless it carries the CSRF token; no remote: done."""
    port = free_port()
    start_daemon("--http", f"127.0.0.1:{port}", "--debounce", "60s", "--max-delay", "120s")
    base = f"http://127.0.0.1:{port}"
    (layout.data / "a.md").write_text("a\n")
    status, answer = post(f"{base}/sync", b"wait=1", "application/x-www-form-urlencoded")
    assert status == 403, answer
    status, answer = post(f"{base}/sync?wait=1")
    assert status == 200 and answer["ok"] is True and answer["remote"] is None and answer["commit"], answer
    status, answer = post(f"{base}/sync", b"[1]")
    assert status == 400
