"""The git side of fleet tasks and the credentials it is given: real git, real files, the loopback server."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from committer.fleet import credentials
from committer.fleet.gitops import Access, Git, Layout, Source, TaskFailed, Tips, duration
from committer.git.runner import GitRunner
from tests.gitserver import USER, GitHTTPServer, git, git_server

__all__ = ["git_server"]  # the fixture, used by name

TOKEN = "ghp_TestToken0123456789abcdefABCDEF0000"  # git_server's
URL = "https://git.example.com/acme/repo.git"


def values(access: Access) -> list[str]:
    return [v for k, v in access.env.items() if k.startswith("GIT_CONFIG_")]


def test_a_token_file_reaches_git_only_through_the_scoped_helper(tmp_path: Path) -> None:
    """The first line is the token, the user from the source's kind; git gets a helper scoped to the source's
    origin and the credential as two variables of its own environment, never in its config values."""
    (tmp_path / "gh").write_text(f"{TOKEN}\nsecond line ignored\n")
    access = credentials.load(tmp_path, "gh", URL, "github")
    assert access.name == "gh"
    assert (access.env["COMMITTER_GIT_USER"], access.env["COMMITTER_GIT_PASSWORD"]) == ("x-access-token", TOKEN)
    keys = [v for k, v in access.env.items() if k.startswith("GIT_CONFIG_KEY_")]
    assert keys == ["safe.directory", "credential.helper", "credential.https://git.example.com.helper"]
    assert not any(TOKEN in v for v in values(access))
    assert TOKEN in access.secrets
    assert base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode() in access.secrets


@pytest.mark.parametrize(("kind", "text", "user"), [
    ("gitlab", "glpat-abcdef123456", "oauth2"),
    ("gitea", "abcdef123456", "git"),
    ("custom", "abcdef123456", "git"),
    ("gitlab", "deploy-bot:abcdef123456", "deploy-bot"),
])
def test_the_user_defaults_by_source_type_unless_the_file_names_one(tmp_path: Path, kind: str, text: str,
                                                                     user: str) -> None:
    (tmp_path / "c").write_text(text)
    access = credentials.load(tmp_path, "c", URL, kind)
    assert (access.env["COMMITTER_GIT_USER"], access.env["COMMITTER_GIT_PASSWORD"]) == (user, "abcdef123456"
                                                                                         if ":" in text else text)


def test_a_private_key_file_is_an_ssh_key_given_by_path(tmp_path: Path) -> None:
    """An OpenSSH or PEM private key: git gets an ssh command naming the file, and no secret at all."""
    folder = tmp_path / "with space"
    folder.mkdir()
    for header in ("OPENSSH PRIVATE KEY", "RSA PRIVATE KEY", "PRIVATE KEY"):
        (folder / "deploy").write_text(f"-----BEGIN {header}-----\nAAAA\n-----END {header}-----\n")
        access = credentials.load(folder, "deploy", "ssh://git@git.example.com/acme/repo.git", "custom")
        assert dict(access.env) == {"GIT_SSH_COMMAND": f"ssh -i '{folder / 'deploy'}' -o IdentitiesOnly=yes "
                                                       "-o BatchMode=yes"}
        assert access.secrets == ()


@pytest.mark.parametrize("name", ["../outside", "a/b", ".hidden", "-x", "x" * 101])
def test_a_credential_name_that_is_not_one_file_in_the_directory_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(TaskFailed) as failed:
        credentials.load(tmp_path / "creds", name, URL, "github")
    assert failed.value.retry is False and failed.value.message.startswith("credential:")


def test_a_link_out_of_the_directory_is_refused_one_inside_is_followed(tmp_path: Path) -> None:
    """A link to a file elsewhere is refused; Kubernetes' links (name -> ..data/name) stay inside and work."""
    creds = tmp_path / "creds"
    (creds / "..data").mkdir(parents=True)
    (tmp_path / "secret").write_text("abcdef123456")
    (creds / "out").symlink_to(tmp_path / "secret")
    with pytest.raises(TaskFailed, match="leads out of that directory") as failed:
        credentials.load(creds, "out", URL, "github")
    assert failed.value.retry is False
    (creds / "..data" / "gh").write_text("abcdef123456")
    (creds / "gh").symlink_to(Path("..data") / "gh")
    assert credentials.load(creds, "gh", URL, "github").env["COMMITTER_GIT_PASSWORD"] == "abcdef123456"


def test_missing_empty_or_unusable_credentials_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(TaskFailed) as failed:
        credentials.load(tmp_path, "absent", URL, "github")
    assert (failed.value.message, failed.value.retry) == (f"credential 'absent' not found in {tmp_path}", True)
    with pytest.raises(TaskFailed, match=r"no credentials directory is set \(--credentials-dir\)"):
        credentials.load(None, "gh", URL, "github")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(TaskFailed, match=r"'empty' in .* is empty"):
        credentials.load(tmp_path, "empty", URL, "github")
    (tmp_path / "tok").write_text("abcdef123456")
    with pytest.raises(TaskFailed, match="only an https source can use") as failed:
        credentials.load(tmp_path, "tok", "git@git.example.com:acme/repo.git", "github")
    assert failed.value.retry is False
    assert credentials.load(tmp_path, "tok", str(tmp_path / "local.git"), "custom").env == {}
    assert credentials.load(tmp_path, "", URL, "github") == Access()


def test_durations_read_as_a_person_writes_them() -> None:
    assert [duration(s) for s in (1800, 3600, 5400, 90, 45, 1, 0.5)] == [
        "30m", "1h", "1h30m", "1m30s", "45s", "1s", "0.5s"]


def test_what_a_failed_fetch_means_is_said_in_one_line(tmp_path: Path, git_server: GitHTTPServer) -> None:
    """Against the real server: no credential, a missing repository, a busy host, an unknown host."""
    ops = Git(GitRunner(), timeout=30)
    layout = Layout(tmp_path / "x.git", bare=True)
    (tmp_path / "tok").write_text(TOKEN)
    access = credentials.load(tmp_path, "tok", git_server.url, "github")
    cases = [
        (Source(git_server.url, Access(), "bare"),
         f"the source {git_server.url} asks for a credential (HTTP 401): give the repository one", True),
        (Source(git_server.url.replace("repo.git", "nope.git"), access, "bare"),
         f"the source {git_server.url.replace('repo.git', 'nope.git')} does not exist (or the credential may not "
         "read it)", False),
        (Source("https://nonexistent.invalid/r.git", Access(), "bare"),
         "cannot reach the source https://nonexistent.invalid/r.git: host not found", True),
        (Source("ssh://git@127.0.0.1:1/r.git", credentials._ssh("k", tmp_path / "k"), "bare"),
         "cannot reach the source ssh://git@127.0.0.1:1/r.git: connection refused", True),
    ]
    for source, message, retry in cases:
        with pytest.raises(TaskFailed) as failed:
            ops.clone(layout, source)
        assert (failed.value.message, failed.value.retry) == (message, retry)
    git_server.set_mode("503")
    with pytest.raises(TaskFailed) as failed:
        ops.clone(layout, Source(git_server.url, access, "bare"))
    assert (failed.value.message, failed.value.retry) == (f"the source {git_server.url} answered HTTP 503", True)
    assert sorted(os.listdir(tmp_path)) == ["served", "tok"]  # no half clone, under any name


def test_leftovers_are_only_the_targets_own(tmp_path: Path) -> None:
    """Half clones and moved-aside copies of this repository go; another's, and look-alikes, stay."""
    target = tmp_path / "repo"
    mine = [".repo.incoming-0123456789ab", ".repo.old-ba9876543210"]
    theirs = [".repo2.incoming-0123456789ab", ".repo.incoming-0123456789ab.incoming-0123456789ab",
              ".repo.incoming-short", "repo.incoming-0123456789ab"]
    for name in mine + theirs:
        (tmp_path / name).mkdir()
        (tmp_path / name / "file").write_text("x")
    assert sorted(p.name for p in Git.clear_leftovers(target)) == sorted(mine)
    assert sorted(os.listdir(tmp_path)) == sorted(theirs)
    assert Git.clear_leftovers(tmp_path / "missing" / "repo") == []


def test_an_empty_repository_describes_itself_and_has_no_history(tmp_path: Path) -> None:
    ops = Git(GitRunner(), timeout=30)
    layout = Layout(tmp_path / "e.git", bare=True)
    ops.initialize(layout)
    snap = ops.snapshot(layout)
    assert (snap.branches, snap.total_commits, snap.last_commit_hash, snap.default_branch) == ((), 0, "", "main")
    assert ops.count(layout, []) == 0 and ops.refs(layout) == {}


def test_history_is_read_as_printed_and_leaving_early_stops_git(tmp_path: Path) -> None:
    """Commits come newest first with their fields; a block left early kills git and raises nothing."""
    work = tmp_path / "w"
    git("init", "--quiet", "--initial-branch=main", str(work))
    for i in range(3):
        git("-C", str(work), "commit", "--quiet", "--allow-empty", "-m", f"subject {i}\n\nbody {i}",
            env={"GIT_COMMITTER_DATE": f"{1_700_000_000 + i} +0200", "GIT_AUTHOR_NAME": "Zoë Ünicode"})
    ops = Git(GitRunner(), timeout=30)
    layout = Layout(work, bare=False)
    with ops.history(layout, []) as commits:
        rows = list(commits)
    assert [r["subject"] for r in rows] == ["subject 2", "subject 1", "subject 0"]
    assert rows[0]["author_name"] == "Zoë Ünicode" and rows[0]["author_email"] == "t@example.com"
    assert rows[0]["committed_at"].isoformat() == "2023-11-14T22:13:22+00:00"
    assert rows[0]["sha"] == git("-C", str(work), "rev-parse", "HEAD")
    with ops.history(layout, [rows[1]["sha"]]) as commits:
        assert [r["subject"] for r in commits] == ["subject 2"]
    with ops.history(layout, []) as commits:
        assert next(commits)["subject"] == "subject 2"
    assert not ops.runner._running
    assert ops.present(layout, [rows[0]["sha"], "0" * 40]) == [rows[0]["sha"]]


def test_the_history_tells_the_same_branches_as_the_snapshot(tmp_path: Path) -> None:
    """A whole history read with its decorations gives the branches, tips and default branch `for-each-ref`
    gives: several branches on one commit, tags (light and annotated), a default other than main, a branch
    on an older commit, and HEAD naming no branch."""
    work = tmp_path / "w"
    git("init", "--quiet", "--initial-branch=trunk", str(work))
    for i in range(3):
        git("-C", str(work), "commit", "--quiet", "--allow-empty", "-m", f"c{i}",
            env={"GIT_COMMITTER_DATE": f"{1_700_000_000 + i} +0000"})
        git("-C", str(work), "branch", f"b{i}")
    git("-C", str(work), "branch", "main", "HEAD~2")
    git("-C", str(work), "tag", "light", "HEAD~1")
    git("-C", str(work), "tag", "-a", "heavy", "-m", "annotated")
    bare = tmp_path / "m.git"
    git("clone", "--quiet", "--mirror", str(work), str(bare))
    ops, layout = Git(GitRunner(), timeout=30), Layout(bare, bare=True)

    def both() -> tuple[object, object]:
        tips = Tips()
        with ops.history(layout, [], tips) as commits:
            assert len(list(commits)) == 3
        return tips.snapshot(), ops.snapshot(layout)

    told, read = both()
    assert told == read and read.default_branch == "trunk"
    assert {b.name for b in read.branches} == {"trunk", "main", "b0", "b1", "b2"}
    git("--git-dir", str(bare), "symbolic-ref", "HEAD", "refs/heads/gone")  # names no branch: main
    told, read = both()
    assert told == read and read.default_branch == "main"
    git("--git-dir", str(bare), "branch", "-D", "main")  # no main either: the newest
    told, read = both()
    assert told == read and read.default_branch in {"trunk", "b2"}


def test_a_token_given_as_user_and_token_is_sent_as_basic_auth(tmp_path: Path, git_server: GitHTTPServer) -> None:
    """`user:token` in the file: the server gets exactly that pair (its own check), and the clone works."""
    git("--git-dir", str(git_server.repo), "fast-import", "--quiet", input=(
        b"commit refs/heads/main\ncommitter C <c@x> 1700000000 +0000\ndata 2\nx\n\n"))
    (tmp_path / "pair").write_text(f"{USER}:{TOKEN}\n")
    access = credentials.load(tmp_path, "pair", git_server.url, "custom")  # custom's own user would be refused
    layout = Layout(tmp_path / "m.git", bare=True)
    Git(GitRunner(), timeout=30).clone(layout, Source(git_server.url, access, "mirror"))
    assert git("--git-dir", str(layout.path), "rev-parse", "main") == git_server.head()
    assert TOKEN not in (layout.path / "config").read_text()


def test_a_head_that_names_no_branch_gives_main_as_the_default(tmp_path: Path) -> None:
    bare = tmp_path / "src.git"
    git("init", "-q", "--bare", "--initial-branch=master", str(bare))  # HEAD -> master, which never exists
    work = tmp_path / "w"
    git("clone", "-q", str(bare), str(work))
    git("-C", str(work), "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "--allow-empty", "-m", "one")
    git("-C", str(work), "push", "-q", "origin", "HEAD:main", "HEAD:topic")
    snapshot = Git(GitRunner(), 60).snapshot(Layout(bare, bare=True))
    assert snapshot.default_branch == "main"
    assert [(b.name, b.is_default) for b in snapshot.branches] == [("main", True), ("topic", False)]


def test_host_lines_tie_a_token_to_its_hosts(tmp_path: Path) -> None:
    """`host:`/`hosts:` lines (any case, commas, a port when given) name where the token may go."""
    (tmp_path / "t").write_text(f"{TOKEN}\nHost: Git.Example.com\nhosts = ghe.example:8443, other.example\n")
    assert credentials.hosts((tmp_path / "t").read_text().splitlines()[1:]) == [
        "git.example.com", "ghe.example:8443", "other.example"]
    for url in (URL, "https://ghe.example:8443/a/b.git", "http://other.example:81/x.git"):
        assert credentials.load(tmp_path, "t", url, "github").env["COMMITTER_GIT_PASSWORD"] == TOKEN
    for url, host in (("https://ghe.example/a/b.git", "ghe.example"), ("https://evil.example/a.git", "evil.example"),
                      ("https://git.example.com.evil.example/a.git", "git.example.com.evil.example")):
        with pytest.raises(TaskFailed, match=f"not the source's host {host}:") as failed:
            credentials.load(tmp_path, "t", url, "github")
        assert failed.value.retry is False
    assert credentials.load(tmp_path, "t", str(tmp_path / "local.git"), "custom").env == {}
