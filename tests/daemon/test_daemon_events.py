"""Events out of a running daemon, to a real loopback receiver and a real exec hook: signed, in order,
retried with the same id, kept across kill -9, and never in the way of a commit."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from committer.ops.outbox import LOG, outbox_dir
from tests.conftest import ROOT, DaemonProcess, Layout, committer, wait_for
from tests.daemon.test_daemon_http import free_port, get, samples
from tests.receiver import receiving
from tests.serve.test_events_stream import SSE
from tests.sync.test_pull import LINES, Clone

pytestmark = pytest.mark.integration
Start = Callable[..., DaemonProcess]
SECRET = "a secret only the receiver and committer know"


def notify_env(layout: Layout, url: str, **more: str) -> dict[str, str]:
    return {**layout.env, "COMMITTER_NOTIFY_URL": url, "COMMITTER_NOTIFY_SECRET": SECRET, **more}


def test_a_receiver_answering_503_three_times_gets_every_event_in_order_once(
    layout: Layout, start_daemon: Start
) -> None:
    with receiving(SECRET) as receiver:
        receiver.answers = [503, 503, 503]
        daemon = start_daemon(env=notify_env(layout, receiver.url))
        for count, name in enumerate(("one.md", "two.md", "three.md"), 1):
            (layout.data / name).write_text(name)
            daemon.wait_event("git_commit", count=count)
        commits = receiver.wait("git_commit", count=3)
        assert [c["paths"]["added"] for c in commits] == [["one.md"], ["two.md"], ["three.md"]]
        first = commits[0]["id"]
        assert [e["id"] for e in receiver.seen[:4]] == [first] * 4  # retried with the same id
        assert len({e["id"] for e in receiver.acked}) == len(receiver.acked)  # none twice once acknowledged
        assert receiver.bad_signatures == 0
        for event in commits:
            assert set(event) >= {"event", "id", "at", "host", "batch", "sha", "op", "paths"}
            assert event["at"].endswith("Z") and event["op"] == "batch"
            assert set(event["paths"]) == {"added", "modified", "deleted", "renamed"}
        assert daemon.stop() == 0
        failed = daemon.events("notify_failed")
        assert len(failed) == 3 and all(SECRET not in json.dumps(e) for e in daemon.events())


def test_events_wait_in_the_outbox_through_kill_9_and_go_out_after_a_restart(
    layout: Layout, start_daemon: Start
) -> None:
    with receiving(SECRET) as receiver:
        url = receiver.url
    # The receiver is down: nothing listens on its port now.
    env = notify_env(layout, url)
    daemon = start_daemon(env=env)
    (layout.data / "kept.md").write_text("kept through kill -9")
    daemon.wait_event("git_commit")
    daemon.wait_event("notify_failed")
    daemon.kill()
    log = outbox_dir(layout.git_dir) / LOG
    assert b"kept.md" in log.read_bytes()
    status = json.loads(committer("status", "--json", env=env).stdout)
    assert status["outbox"] >= 1 and status["oldest_undelivered_at"]
    port = int(url.split(":")[2].split("/")[0])
    with receiving(SECRET, port) as receiver:  # up again, on the address the outbox waits for
        daemon = start_daemon(env=env)
        commit = receiver.wait("git_commit", where=lambda e: e["paths"]["added"] == ["kept.md"])
        assert len(commit) == 1 and receiver.bad_signatures == 0
        wait_for(lambda: json.loads(committer("status", "--json", env=env).stdout)["outbox"] == 0,
                 what="an empty outbox")
        assert daemon.stop() == 0


def test_a_receiver_that_hangs_does_not_slow_a_commit(layout: Layout, start_daemon: Start) -> None:
    with receiving(SECRET) as receiver:
        receiver.hang.set()
        env = notify_env(layout, receiver.url, COMMITTER_NOTIFY_TIMEOUT="30s")
        daemon = start_daemon("--debounce", "50ms", env=env)
        (layout.data / "first.md").write_text("1")
        wait_for(lambda: receiver.seen, what="the receiver holding the first delivery")
        started = time.monotonic()
        for index in range(5):
            (layout.data / f"more-{index}.md").write_text(str(index))
            daemon.wait_event("git_commit", count=index + 2)
        print(f"\n5 commits while the receiver holds a delivery: {time.monotonic() - started:.2f}s")
        assert len(receiver.seen) == 1  # still the first, held: the commits did not wait for it
        receiver.release.set()
        assert daemon.stop(timeout=40) == 0


def test_a_refused_event_is_dropped_and_the_next_goes_out(layout: Layout, start_daemon: Start) -> None:
    with receiving(SECRET) as receiver:
        receiver.answers = [400]
        daemon = start_daemon(env=notify_env(layout, receiver.url))
        (layout.data / "refused.md").write_text("x")
        daemon.wait_event("notify_rejected")
        (layout.data / "taken.md").write_text("y")
        receiver.wait("git_commit", where=lambda e: e["paths"]["added"] == ["taken.md"])
        assert [e["paths"]["added"] for e in receiver.events("git_commit")] == [["taken.md"]]
        assert daemon.stop() == 0


def test_the_exec_hook_gets_the_event_on_stdin_in_the_data_directorys_parent(
    layout: Layout, start_daemon: Start
) -> None:
    out = layout.root / "hook-out"
    out.mkdir()
    hook = layout.root / "hook.py"
    hook.write_text(
        "import json, os, pathlib, sys\n"
        "event = json.load(sys.stdin)\n"
        f"out = pathlib.Path({str(out)!r})\n"
        "(out / (event['id'] + '.json')).write_text(json.dumps({'event': event, 'cwd': os.getcwd(),\n"
        "    'name': os.environ['COMMITTER_EVENT'], 'id': os.environ['COMMITTER_EVENT_ID'],\n"
        "    'secret': os.environ.get('COMMITTER_NOTIFY_SECRET')}))\n"
    )
    env = {**layout.env, "COMMITTER_EXEC_HOOK": f"{sys.executable} '{hook}'", "COMMITTER_NOTIFY_SECRET": SECRET}
    daemon = start_daemon(env=env)
    (layout.data / "hooked file.md").write_text("h")

    def received() -> list[dict[str, object]]:
        return [json.loads(p.read_text()) for p in out.glob("*.json")]

    found = wait_for(received, what="the hook's output")
    assert len(found) == 1
    item = found[0]
    event = item["event"]
    assert isinstance(event, dict)
    assert event["event"] == "git_commit" and event["paths"]["added"] == ["hooked file.md"]
    assert item["name"] == "git_commit" and item["id"] == event["id"]
    assert item["cwd"] == str(layout.data.parent) and item["secret"] is None
    assert daemon.stop() == 0


def test_a_failing_hook_is_logged_with_its_exit_code_and_stderr_then_retried(
    layout: Layout, start_daemon: Start
) -> None:
    marker = layout.root / "fail-once"
    hook = layout.root / "hook.sh"
    hook.write_text(f"#!/bin/sh\ncat >/dev/null\nif [ ! -e '{marker}' ]; then touch '{marker}'; "
                    "echo 'the index is locked' >&2; exit 3; fi\necho ok >> '" + str(layout.root / "ok") + "'\n")
    hook.chmod(0o755)
    daemon = start_daemon(env={**layout.env, "COMMITTER_EXEC_HOOK": str(hook)})
    (layout.data / "a.md").write_text("a")
    failed = daemon.wait_event("notify_failed")[0]
    assert failed["exit_code"] == 3 and "the index is locked" in failed["stderr"]
    wait_for(lambda: (layout.root / "ok").exists(), what="the retried hook")
    assert daemon.stop() == 0


def test_a_pull_tells_the_written_paths_and_a_conflict_its_copy(
    layout: Layout, start_daemon: Start, mirror: Path, tmp_path: Path
) -> None:
    (layout.data / "text.md").write_text(LINES)
    (layout.data / "mine.md").write_text("mine\n")
    with receiving(SECRET) as receiver:
        env = {**notify_env(layout, receiver.url), "COMMITTER_REMOTE": f"file://{mirror}",
               "COMMITTER_PUSH_INTERVAL": "200ms"}
        assert committer("init", env=env).returncode == 0
        daemon = start_daemon(env=env)
        clone = Clone(f"file://{mirror}", tmp_path / "clone")
        remote = clone.commit({"text.md": LINES.replace("line 1\n", "line 1, remote\n"), "theirs.md": "t\n"})
        proc = committer("pull", env=env)
        assert proc.returncode == 0, proc.stderr
        pulled = receiver.wait("git_pull")[0]
        assert pulled["new"] == remote and pulled["outcome"] == "fast_forward"
        assert sorted(pulled["paths"]["written"]) == ["text.md", "theirs.md"] and pulled["paths"]["deleted"] == []
        assert daemon.stop() == 0
        # Both sides change the same file while no daemon runs: `committer pull` keeps the local version,
        # puts the remote's in a copy, and its events wait in the outbox for the next daemon.
        clone.commit({"mine.md": "mine, edited there\n"})
        (layout.data / "mine.md").write_text("mine, edited here\n")
        proc = committer("pull", env=env)
        assert proc.returncode == 0, proc.stderr
        daemon = start_daemon(env=env)
        conflict = receiver.wait("git_conflict")[0]
        assert conflict["path"] == "mine.md" and conflict["copy"].startswith("mine (conflict from main, ")
        assert (layout.data / conflict["copy"]).read_text() == "mine, edited there\n"
        merge = receiver.wait("git_pull", count=2)[1]
        assert merge["outcome"] == "merge" and conflict["copy"] in merge["paths"]["written"]
        names = [e["event"] for e in receiver.events()]
        assert names.index("git_pull", names.index("git_pull") + 1) < names.index("git_conflict")
        assert receiver.bad_signatures == 0
        assert daemon.stop() == 0


def test_status_shows_the_outbox_and_the_last_delivery_error(layout: Layout, start_daemon: Start) -> None:
    with receiving(SECRET) as receiver:
        receiver.status = 503
        env = notify_env(layout, receiver.url)
        daemon = start_daemon(env=env)
        (layout.data / "a.md").write_text("a")
        daemon.wait_event("notify_failed")

        def shown() -> dict[str, object] | None:
            status = json.loads(committer("status", "--json", env=env).stdout)
            return status if status["last_delivery_error"] else None

        status = wait_for(shown, what="the delivery error in status")
        assert status["outbox"] == 1
        error = status["last_delivery_error"]
        assert isinstance(error, dict) and error["message"] == "HTTP 503"
        text = committer("status", env=env).stdout
        assert "1 event(s) waiting" in text and "HTTP 503" in text
        receiver.status = 204
        assert daemon.stop() == 0
    assert os.environ.get("COMMITTER_NOTIFY_SECRET") is None


def test_a_live_stream_client_disconnects_and_resumes_without_missing_one(
    layout: Layout, start_daemon: Start
) -> None:
    port = free_port()
    daemon = start_daemon("--http", f"127.0.0.1:{port}")
    client = SSE(port)
    assert client.status == 200
    client.frame()  # connected
    (layout.data / "live.md").write_text("written after the client connected")
    seen = client.event()
    assert seen["event"] == "git_commit" and seen["data"]["paths"]["added"] == ["live.md"]
    client.close()
    for index in range(3):
        (layout.data / f"while-away-{index}.md").write_text(str(index))
        daemon.wait_event("git_commit", count=index + 2)
    again = SSE(port, {"Last-Event-ID": seen["id"]})
    resumed = [again.event() for _ in range(3)]
    assert [e["data"]["paths"]["added"] for e in resumed] == [[f"while-away-{i}.md"] for i in range(3)]
    assert seen["id"] not in {e["id"] for e in resumed}
    found = samples(get(f"http://127.0.0.1:{port}/metrics")[1])
    assert found[("committer_events_total", (("event", "git_commit"),))] >= 4
    assert found[("committer_notify_outbox", ())] == 0  # no receiver: nothing waits
    started = time.monotonic()
    assert daemon.stop() == 0  # an open stream does not hold the stop
    assert time.monotonic() - started < 10
    again.close()


def test_a_rename_a_push_a_mass_deletion_hold_and_its_release_are_told(
    layout: Layout, start_daemon: Start, mirror: Path
) -> None:
    for n in range(5):
        (layout.data / f"{n}.md").write_text(str(n))
    with receiving(SECRET) as receiver:
        env = {**notify_env(layout, receiver.url), "COMMITTER_REMOTE": f"file://{mirror}",
               "COMMITTER_PUSH_INTERVAL": "200ms", "COMMITTER_MAX_DELETE": "3"}
        daemon = start_daemon(env=env)
        first = receiver.wait("git_commit")[0]
        assert first["op"] == "reconcile" or sorted(first["paths"]["added"]) == [f"{n}.md" for n in range(5)]
        pushed = receiver.wait("git_push")[0]
        assert pushed["remote"] == f"file://{mirror}" and pushed["new"] == first["sha"] and pushed["commits"] >= 1
        os.rename(layout.data / "0.md", layout.data / "zero.md")
        moved = receiver.wait("git_commit", count=2)[1]
        assert moved["paths"]["renamed"] == [["0.md", "zero.md"]] and moved["paths"]["added"] == []
        for n in range(1, 5):
            (layout.data / f"{n}.md").unlink()
        held = receiver.wait("hold")[0]
        assert held["action"] == "set" and held["reason"] == "max_delete" and held["count"] == 4
        proc = committer("confirm-deletes", env=env)
        assert proc.returncode == 0, proc.stderr
        released = receiver.wait("hold", count=2)[1]
        assert released["action"] == "released" and released["reason"] == "max_delete"
        gone = receiver.wait("git_commit", count=3)[2]
        assert gone["op"] == "confirm-deletes" and sorted(gone["paths"]["deleted"]) == [f"{n}.md" for n in range(1, 5)]
        assert daemon.stop() == 0


def test_a_permanent_push_failure_is_told_once(layout: Layout, start_daemon: Start, tmp_path: Path) -> None:
    with receiving(SECRET) as receiver:
        env = {**notify_env(layout, receiver.url), "COMMITTER_REMOTE": f"file://{tmp_path / 'no-such-remote.git'}",
               "COMMITTER_PUSH_INTERVAL": "200ms"}
        daemon = start_daemon(env=env)
        (layout.data / "a.md").write_text("a")
        failed = receiver.wait("push_failed")[0]
        assert failed["kind"] and failed["consecutive_failures"] == 1 and "remote" in failed
        (layout.data / "b.md").write_text("b")
        receiver.wait("git_commit", count=2)
        assert daemon.stop() == 0  # its last push fails too
        assert len(daemon.events("git_push")) >= 2
        assert len(receiver.events("push_failed")) == 1


def docs_receiver() -> str:
    """The example receiver of docs/events.md, as printed there."""
    text = (ROOT / "docs" / "events.md").read_text()
    section = text.split("### A receiver in Python", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_example_receiver_of_the_docs_verifies_the_signature_of_real_events(
    layout: Layout, start_daemon: Start
) -> None:
    code = docs_receiver()
    assert len(code.strip().splitlines()) <= 20
    script = layout.root / "receiver.py"
    script.write_text(code)
    port = free_port()
    out = layout.root / "receiver.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, str(script), str(port)], stdout=sink, stderr=subprocess.STDOUT,
                                env={**os.environ, "COMMITTER_NOTIFY_SECRET": SECRET})
    try:
        wait_for(lambda: _listening(port), what="the example receiver listening")
        forged = urllib.request.Request(f"http://127.0.0.1:{port}/", data=b'{"event":"git_commit","id":"x"}',
                                        headers={"X-Committer-Signature-256": "sha256=" + "0" * 64}, method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=5)
        assert refused.value.code == 401
        refused.value.close()
        daemon = start_daemon(env=notify_env(layout, f"http://127.0.0.1:{port}/"))
        (layout.data / "indexed.md").write_text("for the indexer")
        wait_for(lambda: 'git_commit {"added": ["indexed.md"]' in out.read_text(), what="the receiver's line")
        wait_for(lambda: daemon.events("git_commit") and not json.loads(
            committer("status", "--json", env=layout.env).stdout)["outbox"], what="the event acknowledged")
        assert not daemon.events("notify_failed") and not daemon.events("notify_rejected")
        assert daemon.stop() == 0
    finally:
        proc.terminate()
        proc.wait(10)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_an_outbox_that_cannot_be_opened_is_one_line_not_a_traceback(layout: Layout) -> None:
    env = {**layout.env, "COMMITTER_NOTIFY_URL": "http://127.0.0.1:9/hook"}
    assert committer("init", env=layout.env).returncode == 0
    outbox_dir(layout.git_dir).parent.mkdir(parents=True, exist_ok=True)
    outbox_dir(layout.git_dir).write_text("a file where the outbox should be")
    proc = committer("run", "--once", env=env)
    assert proc.returncode == 1
    assert "cannot open the events outbox" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_event_settings_are_one_line_naming_the_setting(layout: Layout) -> None:
    for flag, value, name in (("--notify-url", "ftp://example.org/x", "notify-url"),
                              ("--exec-hook", "'unterminated", "exec-hook"),
                              ("--exec-hook-timeout", "soon", "exec-hook-timeout"),
                              ("--notify-timeout", "0s", "notify-timeout")):
        proc = committer("run", "--once", flag, value, env=layout.env)
        assert proc.returncode == 2, (flag, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"committer: error: {name}:"), proc.stderr
