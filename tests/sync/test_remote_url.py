"""Remote URLs are parsed strictly: nothing git could read as an option, one unambiguous host; what a
forge's API answers is checked the same way before it is written anywhere."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from committer.core.errors import ConfigError
from committer.core.settings import Settings, load_settings
from committer.sync.transport import Remote
from tests.conftest import Layout, committer
from tests.gitserver import GitHTTPServer, git_server

__all__ = ["git_server"]

ACCEPTED = [
    "https://github.com/acme/notes.git",
    "https://bot:s3cr3t%40pass@git.example:8443/x.git",
    "http://127.0.0.1:8080/notes.git",
    "http://localhost:9/notes.git",
    "http://[::1]:9/notes.git",
    "ssh://git@git.example.com:2222/me/notes.git",
    "git@github.com:acme/notes.git",
    "github.com:acme/notes.git",
    "file:///srv/mirror.git",
    "/srv/mirror.git",
    "  https://github.com/acme/notes.git\r",  # white space around a value is dropped, as for every setting
]
REFUSED = [
    "--upload-pack=touch /tmp/x;",
    "-oProxyCommand=touch /tmp/x",
    "http://host:1\\@other:2/repo.git",
    "https://host\\@other/repo.git",
    "https://a@b@c/repo.git",
    "https://user:pw@host:1@other/repo.git",
    "https://github.com/acme/no\rtes.git",
    "https://github.com/acme/notes.git\n",
    "https://github.com/ac me/notes.git",
    "https://github.com/acme/\tnotes.git",
    "ext::sh -c touch% /tmp/x",
    "ext::touch",
    "fd::3",
    "git@github.com:-u/notes.git",
    "ssh://-oProxyCommand=touch/x",
    "ssh://-user@host/x",
    "ssh://git:password@host/x",
    "http://git.example/notes.git",
    "ftp://git.example/notes.git",
    "git://git.example/notes.git",
    "https://host:99999/x.git",
    "https://host",
    "file://otherhost/srv/x.git",
    "file://localhost/srv/x.git",
    "HTTPS://github.com/acme/notes.git",
    "notes.git",
    "//host/share/x.git",
    "https://git\u202ehub.com/acme/notes.git",  # a direction override: reads as another host
    "https://github.com/acme/\u2028notes.git",
    "https://github.com\xa0/acme/notes.git",
    "https://github.com/acme/\x85notes.git",
    "https://github.com/acme/\u200bnotes.git",
]


@pytest.mark.parametrize("url", ACCEPTED)
def test_accepted_remote_forms(url: str) -> None:
    assert load_settings(flags={"remote": url}).remote == url.strip()


@pytest.mark.parametrize("url", REFUSED)
def test_refused_remotes_name_the_setting_and_never_repeat_the_url(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(flags={"remote": url})
    assert caught.value.setting == "remote"
    assert "\n" not in caught.value.message
    assert "s3cr3t" not in caught.value.message


def test_a_remote_made_without_the_parser_is_refused_by_the_transport() -> None:
    with pytest.raises(ConfigError):
        Remote(Settings(remote="--upload-pack=touch /tmp/x;"))


@pytest.mark.parametrize("command", ["init", "run", "push", "pull", "doctor", "status"])
@pytest.mark.parametrize("way", ["flag", "env", "file"])
def test_an_option_as_remote_runs_nothing(layout: Layout, tmp_path: Path, command: str, way: str) -> None:
    """`--remote '--upload-pack=touch MARKER;'`: one line naming `remote`, exit 2, the marker never made."""
    marker = tmp_path / "ran"
    hostile = f"--upload-pack=touch {marker};"
    committer("init", *layout.args(), env={"COMMITTER_REMOTE": ""})  # a repository to run against
    args = [command, *layout.args()] + (["--once"] if command == "run" else [])
    env = {"COMMITTER_REMOTE": ""}
    if way == "flag":
        args += ["--remote", hostile]
    elif way == "env":
        env["COMMITTER_REMOTE"] = hostile
    else:
        config = tmp_path / "committer.toml"
        config.write_text(f"remote = {hostile!r}\n".replace("'", '"'))
        args += ["--config", str(config)]
    result = committer(*args, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "remote" in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert not marker.exists()


def test_no_network_git_call_takes_the_url_where_an_option_goes() -> None:
    """Every git call that names the remote passes it after --end-of-options (or -- for git-lfs)."""
    root = Path(__file__).resolve().parents[2] / "committer"
    found = subprocess.run(["grep", "-rn", r"remote\.url", str(root)], capture_output=True, text=True).stdout
    calls = [line for line in found.splitlines() if "[" in line and "--end-of-options\", " not in line
             and "\"--\", " not in line and "self.url" not in line]
    assert not calls, calls


def test_a_backslash_url_never_sends_the_token_to_the_other_host(
    git_server: GitHTTPServer, layout: Layout, tmp_path: Path
) -> None:
    """`http://host:1\\@other:2/repo.git`: one reading is `host`, another `other`; it is refused before any
    request, so neither host, and above all not `other`, ever sees an Authorization header."""
    other = GitHTTPServer(tmp_path / "other", token="other-token-0123456789")
    other.start()
    try:
        first = git_server.url.split("/")[2]
        second = other.url.split("/")[2].replace("127.0.0.1", "localhost")
        url = f"http://{first}\\@{second}/repo.git"
        env = {"COMMITTER_TOKEN": git_server.token, "COMMITTER_REMOTE": ""}
        assert committer("init", *layout.args(), env=env).returncode == 0
        for command in ("push", "doctor"):
            result = committer(command, *layout.args(), "--remote", url, env=env)
            assert result.returncode == 2, result.stderr
            assert "remote: a remote must not hold white space, control characters or a backslash" in result.stderr
        assert not other.requests and not git_server.requests
    finally:
        other.stop()


def test_the_credential_is_scoped_to_the_parsed_remote_origin() -> None:
    """The helper answers for exactly the scheme, host and port of the remote as parsed, nothing wider."""
    env, _ = Remote(Settings(remote="https://bot:pw-0123456789@git.example:8443/x.git")).env()
    keys = {env[f"GIT_CONFIG_KEY_{n}"] for n in range(int(env["GIT_CONFIG_COUNT"]))}
    assert {k for k in keys if k.startswith("credential.")} == {"credential.helper",
                                                                "credential.https://git.example:8443.helper"}


@pytest.mark.parametrize("url", ["https://github.com/acme/...git", "https://github.com/../..",
                                 "https://github.com/acme/no%2e%2e.git", "https://github.com/a.b/notes.git",
                                 "git@github.com:acme/.git"])
def test_only_names_github_allows_reach_the_api(url: str) -> None:
    """A remote's path is never turned into an API path it could escape (`..`, percent escapes)."""
    from committer.sync.errors import PushError
    from committer.sync.github import repository

    with pytest.raises(PushError):
        repository(load_settings(flags={"remote": url}))


def test_github_names_still_parse() -> None:
    from committer.sync.github import repository

    assert repository(load_settings(flags={"remote": "git@github.com:acme/notes.git"})) == ("acme", "notes")
    assert repository(load_settings(flags={"remote": "https://github.com/a-b/n.o_t-e.git"})) == ("a-b", "n.o_t-e")
