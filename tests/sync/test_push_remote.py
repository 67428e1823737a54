"""The push loop against real git: file:// remotes and the smart-HTTP server in tests/gitserver.py."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from committer.core.errors import CommitterError
from committer.core.settings import Settings
from committer.git.repo import GitRepo
from committer.sync.bootstrap import adopt_remote, fetch_remote_head, init_from_remote, remote_has_history
from committer.sync.errors import PushError
from committer.sync.pusher import Pusher
from tests.conftest import finishes, worker_threads
from tests.gitserver import GitHTTPServer, git, git_server, wait_for

__all__ = ["git_server"]  # the fixture, imported so pytest finds it


@pytest.fixture(autouse=True)
def _no_ambient_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMMITTER_TOKEN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """The daemon's bare repository, configured as the daemon does, with an empty data directory."""
    (tmp_path / "data").mkdir()
    repo = GitRepo(tmp_path / "git" / "knowledge.git", tmp_path / "data", "main")
    repo.init()
    repo.configure(("committer", "committer@localhost"), [])
    return repo


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    """An empty file:// remote."""
    path = tmp_path / "remote.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(path))
    return path


def settings_for(repo: GitRepo, remote: str, **changes: Any) -> Settings:
    base = Settings(
        git_dir=repo.git_dir,
        data_dir=repo.data_dir,
        remote=remote,
        push_interval=0.05,
        push_backoff_max=0.2,
        push_timeout=10.0,
        shutdown_timeout=5.0,
    )
    return dataclasses.replace(base, **changes)


def commit(repo: GitRepo, name: str | None = None, parent: str | None = "HEAD") -> str:
    """One commit made with plumbing, as the daemon would: a new file and a BM-Meta trailer."""
    gd = ("--git-dir", str(repo.git_dir))
    env = {"GIT_INDEX_FILE": str(repo.git_dir / "test-index")}
    head = repo.head() if parent == "HEAD" else parent
    git(*gd, "read-tree", *([head] if head else ["--empty"]), env=env)
    name = name or f"note-{uuid.uuid4().hex[:8]}.md"
    blob = git(*gd, "hash-object", "-w", "--stdin", input=f"{name}\n".encode())
    git(*gd, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}", env=env)
    tree = git(*gd, "write-tree", env=env)
    meta = json.dumps({"v": 1, "batch": str(uuid.uuid4())})
    msg = f"chore(sync): save {name}\n\nBM-Meta: {meta}\n"
    sha = git(*gd, "commit-tree", tree, *(["-p", head] if head else []), "-m", msg)
    git(*gd, "update-ref", repo.ref, sha)
    return sha


def remote_head(path: Path) -> str | None:
    try:
        return git("--git-dir", str(path), "rev-parse", "-q", "--verify", "refs/heads/main")
    except AssertionError:
        return None


@pytest.fixture
def running() -> Iterator[list[Pusher]]:
    """Pushers started by a test, stopped at its end even when it fails."""
    started: list[Pusher] = []
    yield started
    for pusher in started:
        pusher.stop(1.0)


def start(pusher: Pusher, running: list[Pusher]) -> Pusher:
    running.append(pusher)
    pusher.start()
    return pusher


def pushes(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in logs if event["event"] == "git_push"]


# -- file:// remotes ----------------------------------------------------------------------------


def test_first_push_creates_the_branch(repo: GitRepo, bare: Path) -> None:
    """The first push creates the branch on an empty remote and records what was pushed."""
    sha = commit(repo)
    pusher = Pusher(settings_for(repo, f"file://{bare}"), repo)
    assert pusher.snapshot()["pending_commits"] == 1
    result = pusher.push_now()
    assert result["pushed"] and result["new"] == sha and result["commits"] == 1
    assert remote_head(bare) == sha
    assert pusher.push is not None
    assert git("--git-dir", str(repo.git_dir), "rev-parse", pusher.push.pushed_ref) == sha
    assert pusher.push.pushed_ref.startswith("refs/committer/pushed/") and pusher.push.pushed_ref.endswith("/main")
    snap = pusher.snapshot()
    assert set(snap) == {
        "remote",
        "pending_commits",
        "oldest_pending_at",
        "last_push_at",
        "last_push_seconds",
        "consecutive_failures",
        "last_error",
    }
    assert snap["pending_commits"] == 0 and snap["oldest_pending_at"] is None
    assert snap["last_push_at"].endswith("Z") and snap["last_push_seconds"] >= 0
    assert (
        Pusher(settings_for(repo, f"file://{bare}"), repo).snapshot()["last_push_at"] == snap["last_push_at"]
    )
    assert pusher.push_now()["pushed"] is False


def test_many_commits_go_in_one_push(repo: GitRepo, bare: Path, running: list[Pusher]) -> None:
    """Commits made while nothing pushes leave in one push, which names their batches."""
    shas = [commit(repo) for _ in range(5)]
    changes: list[int] = []
    sent: list[dict[str, Any]] = []
    pusher = Pusher(settings_for(repo, f"file://{bare}"), repo, on_change=lambda: changes.append(1), emit=sent.append)
    assert pusher.snapshot()["pending_commits"] == 5
    start(pusher, running)
    wait_for(lambda: remote_head(bare) == shas[-1], what="the push")
    wait_for(lambda: pusher.snapshot()["pending_commits"] == 0, what="status update")
    [event] = pushes(sent)
    assert event["commits"] == 5 and event["new"] == shas[-1] and event["old"] is None
    assert len(event["batches"]) == 5 and event["remote"] == f"file://{bare}"
    assert changes


def test_request_wakes_the_loop_and_tags_travel(repo: GitRepo, bare: Path, running: list[Pusher]) -> None:
    """request() pushes new work before the interval ends; annotated and lightweight tags go along."""
    commit(repo)
    pusher = start(Pusher(settings_for(repo, f"file://{bare}", push_interval=60.0), repo), running)
    wait_for(lambda: remote_head(bare) == repo.head(), what="first push")
    gd = ("--git-dir", str(repo.git_dir))
    git(*gd, "tag", "-a", "-m", "snapshot", "snap-1", repo.head() or "")
    git(*gd, "tag", "light-1", repo.head() or "")
    pusher.request()
    wait_for(lambda: "snap-1" in git("--git-dir", str(bare), "tag"), what="the tags")
    assert set(git("--git-dir", str(bare), "tag").split()) == {"snap-1", "light-1"}
    sha = commit(repo)
    pusher.request()
    wait_for(lambda: remote_head(bare) == sha, what="the requested push")


def test_refused_tag_is_reported_but_the_branch_goes(repo: GitRepo, bare: Path) -> None:
    """A tag the remote refuses is a `rejected` error; the commits that did arrive are not pending."""
    first = commit(repo)
    pusher = Pusher(settings_for(repo, f"file://{bare}"), repo)
    pusher.push_now()
    git("--git-dir", str(bare), "tag", "-a", "-m", "theirs", "v1", first)
    git("--git-dir", str(repo.git_dir), "tag", "v1", first)
    second = commit(repo)
    with pytest.raises(PushError) as info:
        pusher.push_now()
    assert info.value.kind == "rejected" and "refs/tags/v1" in info.value.detail
    assert remote_head(bare) == second
    snap = pusher.snapshot()
    assert snap["pending_commits"] == 0 and snap["last_error"]["kind"] == "rejected"


def test_remote_away_then_back_loses_nothing(repo: GitRepo, bare: Path, running: list[Pusher]) -> None:
    """While the remote is gone commits keep landing; when it is back all of them arrive."""
    commit(repo)
    pusher = start(Pusher(settings_for(repo, f"file://{bare}"), repo), running)
    wait_for(lambda: remote_head(bare) == repo.head(), what="first push")
    away = bare.with_name("away.git")
    bare.rename(away)
    shas = [commit(repo) for _ in range(3)]
    pusher.request()
    wait_for(lambda: (pusher.snapshot()["last_error"] or {}).get("kind") == "not_found", what="the failure")
    wait_for(lambda: pusher.snapshot()["pending_commits"] == 3, what="pending count")
    assert pusher.snapshot()["consecutive_failures"] >= 1
    shas.append(commit(repo))
    away.rename(bare)
    wait_for(lambda: remote_head(bare) == shas[-1], what="recovery")
    wait_for(lambda: pusher.snapshot()["last_error"] is None, what="error cleared")
    history = git("--git-dir", str(bare), "rev-list", "refs/heads/main").split()
    assert set(shas) <= set(history)


def test_non_fast_forward_is_never_forced(repo: GitRepo, bare: Path, tmp_path: Path) -> None:
    """When someone else moved the remote, the push is refused and their commit stays."""
    commit(repo)
    url = f"file://{bare}"
    Pusher(settings_for(repo, url), repo).push_now()
    other = tmp_path / "other"
    git("clone", "--quiet", str(bare), str(other))
    (other / "theirs.md").write_text("theirs\n")
    git("add", "theirs.md", cwd=other)
    git("commit", "--quiet", "-m", "theirs", cwd=other)
    git("push", "--quiet", "origin", "main", cwd=other)
    theirs = remote_head(bare)
    commit(repo)
    for allow in (False, True):
        # allow_non_ff leases against what we pushed: work we never saw is not overwritten either.
        with pytest.raises(PushError) as info:
            Pusher(settings_for(repo, url, allow_non_ff=allow), repo).push_now()
        assert info.value.kind == "non_fast_forward" and info.value.permanent
        assert remote_head(bare) == theirs


def test_rewritten_history_is_forced_only_with_allow_non_ff(repo: GitRepo, bare: Path) -> None:
    """A local branch that no longer contains what we pushed goes out only with allow_non_ff."""
    commit(repo)
    url = f"file://{bare}"
    Pusher(settings_for(repo, url), repo).push_now()
    rewritten = commit(repo, parent=None)
    with pytest.raises(PushError) as info:
        Pusher(settings_for(repo, url), repo).push_now()
    assert info.value.kind == "non_fast_forward"
    with capture_logs() as logs:
        Pusher(settings_for(repo, url, allow_non_ff=True), repo).push_now()
    assert remote_head(bare) == rewritten
    assert pushes(logs)[0]["forced"] is True


def test_permanent_failure_is_not_hammered(repo: GitRepo, tmp_path: Path, running: list[Pusher]) -> None:
    """After a permanent failure, new commits and requests do not trigger pushes until the slow re-check."""
    commit(repo)
    settings = settings_for(repo, f"file://{tmp_path / 'missing.git'}", push_backoff_max=60.0)
    with capture_logs() as logs:
        pusher = start(Pusher(settings, repo), running)
        wait_for(lambda: pusher.snapshot()["consecutive_failures"] == 1, what="the failure")
        for _ in range(5):
            commit(repo)
            pusher.request()
        # The loop woke for the requests and looked (its status follows the commits landing meanwhile) ...
        wait_for(lambda: pusher.snapshot()["pending_commits"] == 6, what="the loop to see the new commits")
        assert len(pushes(logs)) == 1  # ... and did not push again
    assert pushes(logs)[0]["kind"] == "not_found"


def test_stop_makes_one_last_push(repo: GitRepo, bare: Path) -> None:
    """stop() pushes what is pending within its time limit, without waiting for the interval."""
    commit(repo)
    pusher = Pusher(settings_for(repo, f"file://{bare}", push_interval=600.0), repo)
    before = worker_threads()
    pusher.start()
    wait_for(lambda: remote_head(bare) == repo.head(), what="the first push")
    sha = commit(repo)
    pusher.stop(30.0)  # far less than the interval: only the last push can have landed it
    assert remote_head(bare) == sha and not worker_threads() - before


def test_process_deadline_kills_the_whole_group(repo: GitRepo) -> None:
    """A transport that never answers is killed with its children at push_timeout; transient."""
    commit(repo)
    marker = f"30.{uuid.uuid4().int % 10**9:09d}"  # a sleep no other process runs
    settings = settings_for(
        repo, "ssh://git.invalid/x.git", push_timeout=0.5, git_ssh_command=f"sh -c 'sleep {marker}'"
    )
    with pytest.raises(PushError) as info:  # the transport would sleep 30 s: "stopped answering" is the deadline
        finishes(Pusher(settings, repo).push_now, 25, "the push")
    assert info.value.kind == "transient" and "stopped answering" in info.value.detail
    # SIGKILL is delivered at once, but a loaded machine may take a moment to schedule the exit.
    wait_for(
        lambda: not [cmd for cmd in _cmdlines().values() if f"sleep\0{marker}".encode() in cmd],
        timeout=3,
        what="the transport's children to be gone",
    )


def _pre_receive(bare: Path, script: str) -> None:
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\ncat >/dev/null\n" + script + "\n")
    hook.chmod(0o755)


def test_a_push_that_keeps_working_outlives_push_timeout(repo: GitRepo, bare: Path) -> None:
    """push_timeout is how long git may do nothing, not how long a push may take: a first push of a huge
    tree runs for minutes. Here the remote works (and says so) for 3 s, three times push_timeout."""
    sha = commit(repo)
    _pre_receive(bare, "i=0; while [ $i -lt 30 ]; do echo working >&2; sleep 0.1; i=$((i+1)); done")
    settings = settings_for(repo, f"file://{bare}", push_timeout=1.0)
    started = time.monotonic()
    result = Pusher(settings, repo).push_now()
    assert result["pushed"] and remote_head(bare) == sha
    assert time.monotonic() - started >= 3.0


def test_a_push_that_stops_working_is_cut_off_at_push_timeout(repo: GitRepo, bare: Path) -> None:
    """The remote goes silent while holding the push: git is idle, and stopped once idle for push_timeout."""
    commit(repo)
    marker = f"60.{uuid.uuid4().int % 10**9:09d}"
    _pre_receive(bare, f"echo one moment >&2; sleep {marker}")
    settings = settings_for(repo, f"file://{bare}", push_timeout=1.0)
    with pytest.raises(PushError) as info:
        Pusher(settings, repo).push_now()
    assert info.value.kind == "transient" and "stopped answering" in info.value.detail
    assert remote_head(bare) is None
    wait_for(
        lambda: not [cmd for cmd in _cmdlines().values() if f"sleep\0{marker}".encode() in cmd],
        timeout=10,
        what="the remote side's hook to be gone with git",
    )


# -- smart HTTP ---------------------------------------------------------------------------------


def http_settings(repo: GitRepo, server: GitHTTPServer, tmp_path: Path, **changes: Any) -> Settings:
    token_file = tmp_path / "token"
    if not token_file.exists():
        token_file.write_text(server.token + "\n")
    return settings_for(repo, server.url, token_file=token_file, **changes)


def test_http_push_with_token(repo: GitRepo, git_server: GitHTTPServer, tmp_path: Path) -> None:
    """Over smart HTTP the token arrives as Basic x-access-token:<token>, once the host asks for it."""
    sha = commit(repo)
    Pusher(http_settings(repo, git_server, tmp_path), repo).push_now()
    assert git_server.head() == sha
    expected = "Basic " + base64.b64encode(f"x-access-token:{git_server.token}".encode()).decode()
    assert {r.authorization for r in git_server.requests} == {None, expected}


@pytest.mark.parametrize("mode", ["503", "429"])
def test_overload_then_recovery(
    repo: GitRepo, git_server: GitHTTPServer, tmp_path: Path, running: list[Pusher], mode: str
) -> None:
    """5xx/429 answers are retried with growing delays; the push lands when the host recovers."""
    sha = commit(repo)
    git_server.set_mode(mode)
    delays: list[float] = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 3:
            git_server.set_mode("normal")

    settings = http_settings(repo, git_server, tmp_path, push_backoff_max=300.0)
    pusher = start(Pusher(settings, repo, sleep=sleep), running)
    wait_for(lambda: git_server.head() == sha, what="recovery")
    assert len(delays) == 3
    for n, delay in enumerate(delays):
        assert 2**n <= delay <= 2**n + 1
    wait_for(lambda: pusher.snapshot()["consecutive_failures"] == 0, what="status update")
    assert pusher.snapshot()["last_error"] is None


def test_stop_interrupts_backoff(repo: GitRepo, git_server: GitHTTPServer, tmp_path: Path) -> None:
    """stop() does not wait out a backoff delay."""
    commit(repo)
    git_server.set_mode("503")
    pusher = Pusher(http_settings(repo, git_server, tmp_path, push_backoff_max=3600.0), repo, first_delay=3600.0)
    before = worker_threads()
    pusher.start()
    wait_for(lambda: pusher.snapshot()["consecutive_failures"] >= 1, what="the first failure")
    # The delay is an hour: the thread can only be gone after stop() if the wait was interrupted.
    finishes(lambda: pusher.stop(30.0), 60, "stop()")
    assert not worker_threads() - before


def test_hung_server_is_cut_off_then_recovers(
    repo: GitRepo, git_server: GitHTTPServer, tmp_path: Path
) -> None:
    """A server that accepts and never answers costs one deadline, classified transient."""
    sha = commit(repo)
    git_server.set_mode("hang")
    pusher = Pusher(http_settings(repo, git_server, tmp_path, push_timeout=2.0), repo)
    with pytest.raises(PushError) as info:  # the server never answers: only the deadline ends the push
        finishes(pusher.push_now, 60, "the push")
    assert info.value.kind == "transient"
    git_server.set_mode("normal")
    pusher.push_now()
    assert git_server.head() == sha


def test_stop_cuts_a_hung_push_at_its_deadline(
    repo: GitRepo, git_server: GitHTTPServer, tmp_path: Path
) -> None:
    """A push in flight against a hung server does not hold shutdown past stop()'s time limit."""
    commit(repo)
    git_server.set_mode("hang")
    pusher = Pusher(http_settings(repo, git_server, tmp_path, push_timeout=600.0), repo)
    before = worker_threads()
    pusher.start()
    wait_for(lambda: git_server.hanging >= 1, what="the hung request")
    # Without the cut, stop() would wait out push_timeout (10 min) for the hung push.
    finishes(lambda: pusher.stop(0.5), 60, "stop()")
    assert not worker_threads() - before


def test_wrong_token_then_rotated(
    repo: GitRepo, git_server: GitHTTPServer, tmp_path: Path, running: list[Pusher]
) -> None:
    """A wrong token is an auth error and nothing is lost; a rotated token file is used without restart."""
    token_file = tmp_path / "token"
    token_file.write_text("ghp_wrongwrongwrongwrong\n")
    shas = [commit(repo) for _ in range(2)]
    pusher = start(Pusher(http_settings(repo, git_server, tmp_path), repo), running)
    wait_for(lambda: (pusher.snapshot()["last_error"] or {}).get("kind") == "auth", what="auth failure")
    assert pusher.snapshot()["pending_commits"] == 2 and git_server.head() is None
    assert "ghp_wrong" not in json.dumps(pusher.snapshot())
    shas.append(commit(repo))
    token_file.write_text(git_server.token + "\n")
    wait_for(lambda: git_server.head() == shas[-1], what="push with the rotated token")
    wait_for(lambda: pusher.snapshot()["last_error"] is None, what="error cleared")


@pytest.mark.parametrize(
    ("mode", "kind", "words"),
    [
        ("reject_gh001", "too_large", "GH001: Large files detected"),
        ("reject_gh013", "push_protection", "Push cannot contain secrets"),
    ],
)
def test_host_rejections_are_permanent(
    repo: GitRepo, git_server: GitHTTPServer, tmp_path: Path, mode: str, kind: str, words: str
) -> None:
    """GitHub-style rejections are permanent, keep the host's words, and change nothing remotely."""
    commit(repo)
    git_server.set_mode(mode)
    pusher = Pusher(http_settings(repo, git_server, tmp_path), repo)
    with pytest.raises(PushError) as info:
        pusher.push_now()
    assert info.value.kind == kind and info.value.permanent and words in info.value.detail
    assert git_server.head() is None
    last_error = pusher.snapshot()["last_error"]
    assert last_error["kind"] == kind and words in last_error["message"]


def _cmdlines() -> dict[int, bytes]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "cmdline").read_bytes()
            except OSError:
                continue
    return found


def test_token_never_leaks(repo: GitRepo, git_server: GitHTTPServer, tmp_path: Path) -> None:
    """No byte of the token, raw or base64, in argv, the git dir, logs, status or error messages."""
    token = git_server.token
    header = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    forbidden = [token, header, base64.b64encode(token.encode()).decode()]

    def clean(text: str | bytes) -> bool:
        data = text.encode() if isinstance(text, str) else text
        return not any(f.encode() in data for f in forbidden)

    commit(repo)
    pusher = Pusher(http_settings(repo, git_server, tmp_path, push_timeout=4.0), repo)
    git_server.set_mode("hang")
    errors: list[BaseException] = []
    seen: dict[int, bytes] = {}

    def push() -> None:
        try:
            pusher.push_now()
        except PushError as exc:
            errors.append(exc)

    with capture_logs() as logs:
        worker = threading.Thread(target=push)
        worker.start()

        def git_processes_seen() -> bool:
            seen.update({p: c for p, c in _cmdlines().items() if git_server.url.encode() in c})
            return len(seen) >= 2  # git push and git-remote-http

        wait_for(git_processes_seen, what="git processes talking to the server")
        git_server.set_mode("normal")
        worker.join()
        pusher.push_now()
        git_server.set_mode("503")
        commit(repo)
        with pytest.raises(PushError) as info:
            pusher.push_now()
        errors.append(info.value)
    assert all(clean(cmd) for cmd in seen.values())
    assert git_server.head() is not None
    for path in repo.git_dir.rglob("*"):
        if path.is_file():
            assert clean(path.read_bytes()), path
    assert clean(repr(logs)) and pushes(logs)
    assert clean(json.dumps(pusher.snapshot()))
    assert errors and all(clean(str(e)) and clean(repr(e.args)) for e in errors)


# -- a remote that already has history ----------------------------------------------------------


def _seed_remote(bare: Path, tmp_path: Path) -> str:
    seed = tmp_path / "seed"
    git("clone", "--quiet", str(bare), str(seed))
    (seed / "notes").mkdir()
    (seed / "notes" / "remote.md").write_text("from the remote\n")
    git("add", "-A", cwd=seed)
    git("commit", "--quiet", "-m", "remote history", cwd=seed)
    git("tag", "v1", cwd=seed)
    git("push", "--quiet", "origin", "main", "v1", cwd=seed)
    return git("rev-parse", "HEAD", cwd=seed)


def test_init_from_remote_checks_out_into_empty_dir(repo: GitRepo, bare: Path, tmp_path: Path) -> None:
    """--from-remote takes the remote history and its files; nothing is pending afterwards."""
    settings = settings_for(repo, f"file://{bare}")
    assert remote_has_history(settings, repo) is False
    assert fetch_remote_head(settings, repo) is None
    sha = _seed_remote(bare, tmp_path)
    assert remote_has_history(settings, repo) is True
    assert init_from_remote(settings, repo) == sha
    assert repo.head() == sha
    assert (repo.data_dir / "notes" / "remote.md").read_text() == "from the remote\n"
    assert repo.changed_paths() == set()
    pusher = Pusher(settings, repo)
    assert pusher.snapshot()["pending_commits"] == 0
    assert pusher.push_now()["pushed"] is False


def test_init_from_remote_refuses_a_non_empty_dir(repo: GitRepo, bare: Path, tmp_path: Path) -> None:
    """--from-remote never writes over files already in the data directory."""
    _seed_remote(bare, tmp_path)
    (repo.data_dir / "mine.md").write_text("mine\n")
    with pytest.raises(CommitterError, match="not empty"):
        init_from_remote(settings_for(repo, f"file://{bare}"), repo)
    assert repo.head() is None
    assert sorted(p.name for p in repo.data_dir.iterdir()) == ["mine.md"]


def test_adopt_puts_local_content_on_top(repo: GitRepo, bare: Path, tmp_path: Path) -> None:
    """--adopt takes the remote history without touching the data dir; the next commit goes on top."""
    remote_sha = _seed_remote(bare, tmp_path)
    (repo.data_dir / "mine.md").write_text("mine\n")
    settings = settings_for(repo, f"file://{bare}")
    assert adopt_remote(settings, repo) == remote_sha
    assert sorted(p.name for p in repo.data_dir.iterdir()) == ["mine.md"]
    assert "mine.md" in repo.changed_paths()
    ours = commit(repo, "mine.md")
    Pusher(settings, repo).push_now()
    assert remote_head(bare) == ours
    assert git("--git-dir", str(bare), "rev-parse", f"{ours}^") == remote_sha


def test_adopt_of_an_empty_remote_is_a_no_op(repo: GitRepo, bare: Path) -> None:
    """An empty remote has nothing to adopt: the first push creates the branch."""
    assert adopt_remote(settings_for(repo, f"file://{bare}"), repo) is None
    assert repo.head() is None


def test_remote_helpers_over_http_use_the_token(
    repo: GitRepo, git_server: GitHTTPServer, tmp_path: Path
) -> None:
    """ls-remote and fetch for init go through the same credentials; a wrong token is an auth error."""
    settings = http_settings(repo, git_server, tmp_path)
    assert remote_has_history(settings, repo) is False
    (tmp_path / "token").write_text("wrong-token-value\n")
    with pytest.raises(PushError) as info:
        remote_has_history(settings, repo)
    assert info.value.kind == "auth"
