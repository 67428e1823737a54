"""Unit tests of the push core: classification of real git output, backoff, credentials."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from committer.core import logs
from committer.core.settings import Settings
from committer.git import lfs
from committer.sync import credentials as remote_mod
from committer.sync.credentials import read_token, split_credentials
from committer.sync.errors import PERMANENT, PushError, classify
from committer.sync.pusher import backoff
from committer.sync.transport import Remote

URL = "http://127.0.0.1:39595/repo.git"
REJECTED_HINT = "error: failed to push some refs to 'http://127.0.0.1:39595/repo.git'\n"

# (rc, stdout, stderr) captured from git 2.39 `push --porcelain` with LC_ALL=C against tests/gitserver.py
# and file:// remotes, plus messages GitHub sends (GH006, GH007, 403, LFS quota, RPC failures).
SAMPLES: dict[str, tuple[int, str, str, str | None]] = {
    "new_branch": (0, f"To {URL}\n*\tHEAD:refs/heads/main\t[new branch]\nDone\n", "", None),
    "up_to_date": (0, f"To {URL}\n=\tHEAD:refs/heads/main\t[up to date]\nDone\n", "", None),
    "fast_forward": (0, f"To {URL}\n \tHEAD:refs/heads/main\t8229127..fe077de\nDone\n", "", None),
    "bad_token": (
        128,
        "",
        "fatal: could not read Username for 'http://127.0.0.1:39595': terminal prompts disabled\n",
        "auth",
    ),
    "github_bad_password": (
        128,
        "",
        "remote: Invalid username or password.\n"
        "fatal: Authentication failed for 'https://github.com/acme/notes.git/'\n",
        "auth",
    ),
    "github_no_write": (
        128,
        "",
        "remote: Permission to acme/notes.git denied to bot.\n"
        "fatal: unable to access 'https://github.com/acme/notes.git/': "
        "The requested URL returned error: 403\n",
        "not_found",
    ),
    "http_403": (
        128,
        "",
        "fatal: unable to access 'https://git.example/x.git/': The requested URL returned error: 403\n",
        "auth",
    ),
    "ssh_key": (
        128,
        "",
        "git@github.com: Permission denied (publickey).\nfatal: Could not read from remote repository.\n\n"
        "Please make sure you have the correct access rights\nand the repository exists.\n",
        "auth",
    ),
    "http_404": (128, "", "fatal: repository 'http://127.0.0.1:39595/nope.git/' not found\n", "not_found"),
    "github_not_found": (
        128,
        "",
        "remote: Repository not found.\nfatal: repository 'https://github.com/acme/nope.git/' not found\n",
        "not_found",
    ),
    "file_missing": (
        128,
        "",
        "fatal: '/nonexistent/x.git' does not appear to be a git repository\n"
        "fatal: Could not read from remote repository.\n\n"
        "Please make sure you have the correct access rights\n"
        "and the repository exists.\n",
        "not_found",
    ),
    "http_503": (
        128,
        "",
        f"fatal: unable to access '{URL}/': The requested URL returned error: 503\n",
        "transient",
    ),
    "http_429": (
        128,
        "",
        f"fatal: unable to access '{URL}/': The requested URL returned error: 429\n",
        "transient",
    ),
    "refused": (
        128,
        "",
        "fatal: unable to access 'http://127.0.0.1:1/x.git/': "
        "Failed to connect to 127.0.0.1 port 1 after 0 ms: "
        "Couldn't connect to server\n",
        "transient",
    ),
    "dns": (
        128,
        "",
        "fatal: unable to access 'http://nonexistent.invalid/x.git/': "
        "Could not resolve host: nonexistent.invalid\n",
        "transient",
    ),
    "too_slow": (
        128,
        "",
        f"fatal: unable to access '{URL}/': "
        "Operation too slow. Less than 1000 bytes/sec transferred the last "
        "1 seconds\n",
        "transient",
    ),
    "rpc_failed_everything_up_to_date": (
        1,
        "",
        "error: RPC failed; HTTP 500 curl 22 The requested URL returned error: 500\n"
        "send-pack: unexpected disconnect while reading sideband packet\n"
        "fatal: the remote end hung up unexpectedly\nEverything up-to-date\n",
        "transient",
    ),
    "early_eof": (
        128,
        "",
        "error: RPC failed; curl 92 HTTP/2 stream 0 was not closed cleanly\nfatal: early EOF\n",
        "transient",
    ),
    "lock_contention": (
        1,
        "To file:///tmp/t/bare.git\n"
        "!\tHEAD:refs/heads/main\t[remote rejected] (failed to update ref)\nDone\n",
        "remote: error: cannot lock ref 'refs/heads/main': Unable to create "
        "'/tmp/t/bare.git/./refs/heads/main.lock': File exists.        \n"
        "error: failed to push some refs to 'file:///tmp/t/bare.git'\n",
        "transient",
    ),
    "fetch_first": (
        1,
        f"To {URL}\n!\tHEAD:refs/heads/main\t[rejected] (fetch first)\nDone\n",
        REJECTED_HINT + "hint: Updates were rejected because the remote contains work that you do\n",
        "non_fast_forward",
    ),
    "non_fast_forward": (
        1,
        f"To {URL}\n!\tHEAD:refs/heads/main\t[rejected] (non-fast-forward)\nDone\n",
        REJECTED_HINT,
        "non_fast_forward",
    ),
    "lease_stale": (
        1,
        f"To {URL}\n!\tHEAD:refs/heads/main\t[rejected] (stale info)\nDone\n",
        REJECTED_HINT,
        "non_fast_forward",
    ),
    "gh001": (
        1,
        f"To {URL}\n!\tHEAD:refs/heads/main\t[remote rejected] (pre-receive hook declined)\nDone\n",
        "remote: error: Trace: 3c1e1d0a8f2e4b6d9a7c5e3f1b2d4c6e        \n"
        "remote: error: See https://gh.io/lfs for more information.        \n"
        "remote: error: File big.bin is 120.00 MB; "
        "this exceeds GitHub's file size limit of 100.00 MB        \n"
        "remote: error: GH001: Large files detected. You may want to try Git Large File Storage - "
        "https://git-lfs.github.com.        \n" + REJECTED_HINT,
        "too_large",
    ),
    "gh013": (
        1,
        f"To {URL}\n!\tHEAD:refs/heads/main\t[remote rejected] (pre-receive hook declined)\nDone\n",
        "remote: error: GH013: Repository rule violations found for refs/heads/main.        \nremote: \n"
        "remote: - GITHUB PUSH PROTECTION        \n"
        "remote:   Resolve the following violations before pushing again        \nremote: \n"
        "remote:   - Push cannot contain secrets        \n" + REJECTED_HINT,
        "push_protection",
    ),
    "gh006": (
        1,
        "To https://github.com/acme/notes.git\n"
        "!\trefs/heads/main:refs/heads/main\t[remote rejected] (protected branch hook declined)\nDone\n",
        "remote: error: GH006: Protected branch update failed for refs/heads/main.\n"
        "remote: error: Changes must be made through a pull request.\n",
        "protected_branch",
    ),
    "gh007": (
        1,
        "To https://github.com/acme/notes.git\n"
        "!\trefs/heads/main:refs/heads/main\t[remote rejected] (push declined due to email privacy "
        "restrictions)\nDone\n",
        "remote: error: GH007: Your push would publish a private email address.\n",
        "rejected",
    ),
    "lfs_quota": (
        1,
        "",
        "batch response: This repository is over its data quota. Account responsible for LFS bandwidth "
        "should purchase more data packs to restore access.\n"
        "error: failed to push some refs to 'https://github.com/acme/notes.git'\n",
        "too_large",
    ),
    "http_413": (
        1,
        "",
        "error: RPC failed; HTTP 413 curl 22 The requested URL returned error: 413\n"
        "fatal: the remote end hung up unexpectedly\n",
        "too_large",
    ),
    "tag_exists": (
        1,
        "To ../r.git\n \tHEAD:refs/heads/main\t42cb4d7..1c1050b\n"
        "!\trefs/tags/v1:refs/tags/v1\t[rejected] (already exists)\nDone\n",
        "error: failed to push some refs to '../r.git'\n"
        "hint: Updates were rejected because the tag already exists in the remote.\n",
        "rejected",
    ),
    "hook_declined": (
        1,
        f"To {URL}\n!\tHEAD:refs/heads/main\t[remote rejected] (pre-receive hook declined)\nDone\n",
        "remote: policy says no\n" + REJECTED_HINT,
        "rejected",
    ),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_classify_real_git_output(name: str) -> None:
    """Each real git answer maps to its kind; success only when the ref line says so."""
    rc, stdout, stderr, kind = SAMPLES[name]
    error = classify(rc, stderr, stdout, ref="refs/heads/main")
    assert (error.kind if error else None) == kind
    if error is not None:
        assert error.permanent == (kind in PERMANENT)
        assert "hint:" not in error.detail


def test_exit_zero_without_our_ref_line_is_not_success() -> None:
    """git can exit 0 and report nothing for our ref: that is not a push."""
    error = classify(0, "Everything up-to-date\n", "", ref="refs/heads/main")
    assert error is not None and error.kind == "unknown"


def test_exit_zero_with_rejected_line_is_not_success() -> None:
    """Old gits exit 0 with --porcelain even when a ref was rejected."""
    error = classify(0, "", SAMPLES["fetch_first"][1], ref="refs/heads/main")
    assert error is not None and error.kind == "non_fast_forward"


def test_killed_git_is_transient() -> None:
    """A git process killed by a signal (deadline, shutdown) is worth retrying."""
    error = classify(-9, "", "")
    assert error is not None and error.kind == "transient" and "signal 9" in error.detail


def test_message_keeps_host_words_and_drops_secrets() -> None:
    """The message carries the host's text, with URL credentials and given secrets removed."""
    stderr = (
        "remote: error: GH013: Repository rule violations found for refs/heads/main.\n"
        "remote:   - Push cannot contain secrets: ghp_SECRETSECRET found\n"
        "error: failed to push some refs to 'https://bot:hunter2hunter2@github.com/acme/notes.git'\n"
        "fatal: unable to access 'https://bot:hunter2hunter2@github.com/acme/notes.git/': boom\n"
    )
    error = classify(1, stderr, "", secrets=("ghp_SECRETSECRET",))
    assert error is not None and error.kind == "push_protection"
    assert "GH013" in error.detail and "Push cannot contain secrets" in error.detail
    assert "hunter2" not in error.message and "ghp_SECRETSECRET" not in error.message
    assert "push_protection" in error.message


def test_permanent_kinds() -> None:
    """Only transient and unknown failures are retried with backoff."""
    assert not PushError("transient", "x").permanent
    assert not PushError("unknown", "x").permanent
    for kind in (
        "auth",
        "not_found",
        "non_fast_forward",
        "rejected",
        "too_large",
        "push_protection",
        "protected_branch",
    ):
        assert PushError(kind, "x").permanent


def _flaky(failures: int, kind: str = "transient") -> tuple[list[int], object]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise PushError(kind, "boom")
        return "ok"

    return calls, attempt


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    """Transient failures wait 1, 2, 4, 8 ... s plus up to 1 s of jitter, never above the cap."""
    sleeps: list[float] = []
    calls, attempt = _flaky(9)
    result = backoff(Settings(push_backoff_max=30.0), sleeps.append, lambda: False)(attempt)  # type: ignore[arg-type]
    assert result == "ok" and len(calls) == 10
    assert len(sleeps) == 9
    for n, delay in enumerate(sleeps[:5]):
        assert 2**n <= delay <= 2**n + 1
    assert sleeps[5:] == [30.0, 30.0, 30.0, 30.0]


def test_backoff_does_not_retry_permanent_failures() -> None:
    """A permanent failure is raised at once, without sleeping."""
    sleeps: list[float] = []
    calls, attempt = _flaky(5, "auth")
    with pytest.raises(PushError) as info:
        backoff(Settings(), sleeps.append, lambda: False)(attempt)  # type: ignore[arg-type]
    assert info.value.kind == "auth" and len(calls) == 1 and sleeps == []


def test_backoff_stops_when_told() -> None:
    """When the loop is stopping, the last transient error is raised instead of sleeping again."""
    sleeps: list[float] = []
    calls, attempt = _flaky(100)
    with pytest.raises(PushError):
        backoff(Settings(), sleeps.append, lambda: len(calls) >= 3)(attempt)  # type: ignore[arg-type]
    assert len(calls) == 3 and len(sleeps) == 2


def test_token_sources_in_order(tmp_path: Path) -> None:
    """COMMITTER_TOKEN wins, then token_file (read every time), then the systemd credential."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "token").write_text("from-systemd\n")
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    env = {"COMMITTER_TOKEN": "from-env", "CREDENTIALS_DIRECTORY": str(creds)}
    assert read_token(Settings(token_file=token_file), env) == "from-env"
    del env["COMMITTER_TOKEN"]
    assert read_token(Settings(token_file=token_file), env) == "from-file"
    token_file.write_text("rotated\n")
    assert read_token(Settings(token_file=token_file), env) == "rotated"
    assert read_token(Settings(), env) == "from-systemd"
    assert read_token(Settings(), {}) is None


def test_unreadable_token_file_is_a_credential_file_error(tmp_path: Path) -> None:
    """A token file that vanished is reported as a file that cannot be read (not as refused credentials), in
    one line naming the file and why."""
    with pytest.raises(PushError) as info:
        read_token(Settings(token_file=tmp_path / "missing"), {})
    assert info.value.kind == "credential_file"
    assert info.value.detail == f"the token file {tmp_path / 'missing'} cannot be read: no such file or directory"


def test_a_credentials_directory_it_may_not_read_is_a_credential_file_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$CREDENTIALS_DIRECTORY that denies access (systemd's credential mount missing): one line, no crash."""
    creds = tmp_path / "credentials"
    creds.mkdir()
    settings = Settings()

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "is_file", denied)
    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(PushError) as info:
        read_token(settings, {"CREDENTIALS_DIRECTORY": str(creds)})
    assert info.value.kind == "credential_file" and str(creds / "token") in info.value.detail


def config_of(env: dict[str, str]) -> dict[str, str]:
    """The git config a process gets through GIT_CONFIG_COUNT/KEY/VALUE."""
    return {env[f"GIT_CONFIG_KEY_{n}"]: env[f"GIT_CONFIG_VALUE_{n}"] for n in range(int(env["GIT_CONFIG_COUNT"]))}


def test_url_credentials_leave_the_url_for_a_helper_scoped_to_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """user:password in an https URL reaches git through the environment, for that origin only, never argv."""
    monkeypatch.delenv("COMMITTER_TOKEN", raising=False)
    monkeypatch.setenv("GIT_ASKPASS", "/usr/bin/ksshaskpass")
    assert split_credentials("https://bot:pa%40ss@git.example/x.git") == (
        "https://git.example/x.git",
        ("bot", "pa@ss"),
    )
    assert split_credentials("ssh://git@host/x.git") == ("ssh://git@host/x.git", None)
    remote = Remote(Settings(remote="https://bot:s3cr3tpass@git.example:8443/x.git"))
    assert remote.url == "https://git.example:8443/x.git"
    assert remote.shown == "https://***@git.example:8443/x.git"
    env, secrets = remote.env()
    config = config_of(env)
    assert list(config) == ["lfs.url", "lfs.pushurl", *lfs.PINNED, "credential.helper",
                            "credential.https://git.example:8443.helper"]
    assert config["lfs.url"] == config["lfs.pushurl"] == "https://git.example:8443/x.git/info/lfs"
    assert config["credential.helper"] == ""
    assert config["credential.https://git.example:8443.helper"] == remote_mod.HELPER
    assert env[remote_mod.USER_ENV] == "bot" and env[remote_mod.PASSWORD_ENV] == "s3cr3tpass"
    assert not any("s3cr3tpass" in value for value in config.values())
    assert not any(key.startswith("http.") for key in config)
    assert env["GIT_TERMINAL_PROMPT"] == "0" and "GIT_ASKPASS" not in env
    assert "s3cr3tpass" in secrets


def test_token_goes_as_x_access_token_and_is_registered_as_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token is the password of user x-access-token, as GitHub expects, and never shows in logs."""
    monkeypatch.setenv("COMMITTER_TOKEN", "ghp_unit0123456789")
    remote = Remote(Settings(remote="https://github.com/acme/notes.git"))
    env, secrets = remote.env()
    assert config_of(env)["credential.https://github.com.helper"] == remote_mod.HELPER
    assert env[remote_mod.USER_ENV] == "x-access-token" and env[remote_mod.PASSWORD_ENV] == "ghp_unit0123456789"
    assert "COMMITTER_TOKEN" not in env
    header = base64.b64encode(b"x-access-token:ghp_unit0123456789").decode()
    assert {"ghp_unit0123456789", header} <= set(secrets)
    assert {"ghp_unit0123456789", header} <= set(logs._secrets)


def test_ssh_remote_gets_ssh_command_and_no_header(monkeypatch: pytest.MonkeyPatch) -> None:
    """SSH remotes use the key or agent; a token is not handed to them."""
    monkeypatch.setenv("COMMITTER_TOKEN", "ghp_unit0123456789")
    remote = Remote(Settings(remote="git@github.com:acme/notes.git", git_ssh_command="ssh -i /k"))
    env, secrets = remote.env()
    assert env["GIT_SSH_COMMAND"] == "ssh -i /k"
    assert secrets == ()
    url = "git@github.com:acme/notes.git"
    assert config_of(env) == {"lfs.url": url, "lfs.pushurl": url, **lfs.PINNED}
    assert remote_mod.PASSWORD_ENV not in env and "COMMITTER_TOKEN" not in env
