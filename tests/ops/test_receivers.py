"""The two receivers against real things: a loopback HTTP server that lies, redirects, hangs or refuses,
and hooks that fail, flood stderr, fork, or never exit."""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import sys
from pathlib import Path

import pytest

from committer.core import events
from committer.core.settings import Settings, load_settings
from committer.ops.courier import Courier
from committer.ops.outbox import Entry, Outbox
from committer.ops.receivers import Failed, HookReceiver, HttpReceiver
from tests.conftest import finishes, wait_for
from tests.receiver import receiving

SECRET = "signing secret"


def settings(tmp_path: Path, **flags: object) -> Settings:
    (tmp_path / "data").mkdir(exist_ok=True)
    base = {"data_dir": str(tmp_path / "data"), "git_dir": str(tmp_path / "git.git")}
    return load_settings({}, {}, {**base, **flags})


def entry(event: events.Event) -> tuple[Entry, bytes]:
    body = events.body(event)
    return Entry(1, event["id"], event["event"], event["at"], 0, 0, len(body)), body


def made() -> events.Event:
    return events.hold(action=events.SET, reason="mass_delete", paths=["a.md", "b.md"])


def test_the_signature_is_githubs_hmac_sha256_of_the_raw_body(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMITTER_NOTIFY_SECRET", SECRET)
    with receiving(SECRET) as receiver:
        http = HttpReceiver(settings(tmp_path, notify_url=receiver.url))
        item, body = entry(made())
        http.send(item, body)
        assert receiver.bad_signatures == 0 and receiver.acked[0]["id"] == item.id
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        from committer.core.secret import signature

        assert signature(SECRET, body) == expected
        http.close()


def test_without_a_secret_no_signature_and_an_unreadable_secret_file_sends_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COMMITTER_NOTIFY_SECRET", raising=False)
    missing = tmp_path / "no-such-secret"
    with receiving(None) as receiver:
        http = HttpReceiver(settings(tmp_path, notify_url=receiver.url, notify_secret_file=str(missing)))
        with pytest.raises(Failed) as failed:
            http.send(*entry(made()))
        assert not failed.value.drop and not receiver.seen  # never sent unsigned
        http.close()


@pytest.mark.parametrize(("status", "drop"), [(400, True), (404, True), (410, True), (429, False), (500, False),
                                              (503, False)])
def test_4xx_other_than_429_is_dropped_and_the_rest_retried(tmp_path: Path, status: int, drop: bool) -> None:
    with receiving(None) as receiver:
        receiver.status = status
        http = HttpReceiver(settings(tmp_path, notify_url=receiver.url))
        with pytest.raises(Failed) as failed:
            http.send(*entry(made()))
        assert failed.value.drop is drop and failed.value.details["status"] == status
        http.close()


def test_any_2xx_is_success_whatever_its_body(tmp_path: Path) -> None:
    with receiving(None) as receiver:
        receiver.status = 202
        receiver.headers = {"Content-Type": "text/html"}
        http = HttpReceiver(settings(tmp_path, notify_url=receiver.url))
        http.send(*entry(made()))
        http.close()


def test_a_redirect_is_never_followed_with_the_signed_body(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMITTER_NOTIFY_SECRET", SECRET)
    with receiving(None) as elsewhere, receiving(SECRET) as receiver:
        receiver.status = 307
        receiver.headers = {"Location": elsewhere.url}
        http = HttpReceiver(settings(tmp_path, notify_url=receiver.url))
        with pytest.raises(Failed) as failed:
            http.send(*entry(made()))
        assert "redirect" in failed.value.message and not failed.value.drop
        assert not elsewhere.seen
        http.close()


def test_a_receiver_that_hangs_is_cut_at_notify_timeout(tmp_path: Path) -> None:
    with receiving(None) as receiver:
        receiver.hang.set()
        http = HttpReceiver(settings(tmp_path, notify_url=receiver.url, notify_timeout="500ms"))
        with pytest.raises(Failed) as failed:  # the receiver never answers: only the deadline ends the send
            finishes(lambda: http.send(*entry(made())), 60, "the send")
        assert "within 0.5s" in failed.value.message
        http.close()


def test_a_url_with_a_token_is_never_shown(tmp_path: Path) -> None:
    http = HttpReceiver(settings(tmp_path, notify_url="http://user:pw@127.0.0.1:9/hook?token=t0ps3cret"))
    with pytest.raises(Failed) as failed:
        http.send(*entry(made()))
    assert "t0ps3cret" not in failed.value.message and "pw" not in http.shown
    http.close()


def test_the_courier_retries_in_order_with_the_same_id_then_goes_on(tmp_path: Path) -> None:
    results: list[str] = []
    with receiving(None) as receiver:
        receiver.answers = [503, 503, 503]
        outbox = Outbox(tmp_path, ("http",), 100)
        outbox.open()
        first, second = made(), made()
        outbox.append(first)
        outbox.append(second)
        courier = Courier(outbox, HttpReceiver(settings(tmp_path, notify_url=receiver.url)),
                          lambda _r, result, _e: results.append(result), retry_first=0.01, retry_max=0.05)
        courier.start()
        wait_for(lambda: len(receiver.acked) == 2, what="both events")
        courier.stop(1.0)
        outbox.close()
    assert [e["id"] for e in receiver.seen] == [first["id"]] * 4 + [second["id"]]
    assert results == ["failed", "failed", "failed", "ok", "ok"]


# -- the exec hook ---------------------------------------------------------------------------------


def hook(tmp_path: Path, script: str, timeout: str = "30s") -> HookReceiver:
    path = tmp_path / "hook.py"
    path.write_text(script)
    return HookReceiver(settings(tmp_path, exec_hook=f"{sys.executable} {path}", exec_hook_timeout=timeout))


def test_a_failing_hook_says_its_exit_code_and_the_end_of_its_stderr(tmp_path: Path) -> None:
    receiver = hook(tmp_path, "import sys\nsys.stdin.read()\nsys.stderr.write('x' * 5_000_000 + 'the end')\n"
                              "sys.exit(7)\n")
    with pytest.raises(Failed) as failed:
        receiver.send(*entry(made()))
    assert failed.value.details["exit_code"] == 7
    stderr = failed.value.details["stderr"]
    assert stderr.endswith("the end") and len(stderr) <= 1000


def test_a_hook_that_never_exits_is_killed_with_what_it_forked(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    receiver = hook(tmp_path, "import subprocess, sys, time\n"
                              "child = subprocess.Popen(['sleep', '300'])\n"
                              f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
                              "time.sleep(300)\n", timeout="1s")
    with pytest.raises(Failed) as failed:
        finishes(lambda: receiver.send(*entry(made())), 60, "the hook")
    assert "did not finish within 1s" in failed.value.message
    child = int(pid_file.read_text())

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, what="the forked child killed")


@pytest.mark.parametrize("code", [0, 3])
def test_a_hook_that_exits_leaves_nothing_running(tmp_path: Path, code: int) -> None:
    """`sleep 777 &` then exit: what the hook left in the background is ended with it, whatever its exit code."""
    pid_file = tmp_path / "child.pid"
    script = tmp_path / "hook.sh"
    script.write_text(f"#!/bin/sh\nsleep 777 &\necho $! > {pid_file}\n"
                      f"exit {code}\n")
    script.chmod(0o755)
    # The background sleep keeps the hook's output open: waiting for it would take exec_hook_timeout.
    receiver = HookReceiver(settings(tmp_path, exec_hook=str(script), exec_hook_timeout="600s"))
    if code:
        with pytest.raises(Failed):
            finishes(lambda: receiver.send(*entry(made())), 60, "the hook")
    else:
        finishes(lambda: receiver.send(*entry(made())), 60, "the hook")
    child = int(pid_file.read_text())

    def gone() -> bool:
        try:
            with open(f"/proc/{child}/stat", "rb") as fh:
                return fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"  # dead, waiting for its reaper
        except FileNotFoundError:
            return True

    wait_for(gone, timeout=5, what="the hook's background sleep ended")


def test_a_hook_that_does_not_read_stdin_and_exits_0_is_a_success(tmp_path: Path) -> None:
    receiver = hook(tmp_path, "pass\n")
    big = events.hold(action=events.SET, reason="size", paths=[f"{'y' * 200}/{n}" for n in range(1000)])
    receiver.send(*entry(big))


def test_stopping_cuts_a_hook_under_way(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path, ("exec",), 10)
    outbox.open()
    outbox.append(made())
    receiver = hook(tmp_path, "import time\ntime.sleep(900)\n", timeout="600s")
    courier = Courier(outbox, receiver, lambda *_: None)
    courier.start()
    wait_for(lambda: receiver._proc is not None, what="the hook running")
    proc = receiver._proc
    finishes(lambda: courier.stop(0.2), 60, "stop()")  # not the hook's 10 minutes
    assert proc is not None and proc.poll() == -signal.SIGKILL
    assert outbox.waiting("exec") == 1  # not delivered: it waits for the next start
    outbox.close()
