"""`committer pull` against real remotes changed by a second clone: fast-forward, merge, conflict copies,
forced updates refused, mass deletions held; and the pure parts (conflict names) beside them."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from committer.git import lfs
from committer.git.trees import conflict_name
from tests.conftest import Layout, commit_count, committer, git, show, tree_files
from tests.gitserver import GitHTTPServer, git_server  # noqa: F401  (a fixture)

integration = pytest.mark.integration
WHEN = 1795404900.0  # 2026-11-23T03:35:00Z
STAMP = "2026-11-23T03-35-00Z"


# -- conflict names (pure) ----------------------------------------------------------------------


def test_conflict_name_keeps_the_extension_and_the_folder() -> None:
    free = conflict_name("notes/a.md", "main", WHEN, lambda _n: False)
    assert free == f"notes/a (conflict from main, {STAMP}).md"


def test_conflict_name_without_extension_and_for_dot_files() -> None:
    assert conflict_name("Makefile", "main", WHEN, lambda _n: False) == f"Makefile (conflict from main, {STAMP})"
    assert conflict_name(".profile", "main", WHEN, lambda _n: False) == f".profile (conflict from main, {STAMP})"


def test_conflict_name_is_unique_and_safe_for_branches_with_slashes() -> None:
    first = f"a (conflict from team-notes, {STAMP}).md"
    name = conflict_name("a.md", "team/notes", WHEN, lambda n: n == first)
    assert name == f"a (conflict from team-notes, {STAMP} 2).md"
    assert "/" not in name


# -- a second clone that edits the remote -------------------------------------------------------


class Clone:
    """Another working copy of the remote, as a person editing on GitHub or elsewhere would have."""

    def __init__(self, url: str, path: Path, env: dict[str, str] | None = None) -> None:
        self.path = path
        self.env = env
        self.run("clone", "-q", url, str(path), cwd=path.parent)

    def run(self, *args: str, cwd: Path | None = None) -> str:
        base = ["git", "-c", "user.name=Other", "-c", "user.email=other@example.com"]
        proc = subprocess.run([*base, *args], cwd=cwd or self.path, capture_output=True, text=True,
                              env=self.env, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def commit(self, files: dict[str, str | None], message: str = "edit elsewhere") -> str:
        self.run("pull", "-q", "--ff-only", "origin", "main")
        for name, text in files.items():
            target = self.path / name
            if text is None:
                target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
        self.run("add", "-A")
        self.run("commit", "-qm", message)
        self.run("push", "-q", "origin", "HEAD:main")
        return self.run("rev-parse", "HEAD").strip()


def start(layout: Layout, remote: str, files: dict[str, str], env: dict[str, str] | None = None) -> dict[str, str]:
    """The data directory with `files`, committed and pushed; returns the environment for the CLI."""
    for name, text in files.items():
        (layout.data / name).parent.mkdir(parents=True, exist_ok=True)
        (layout.data / name).write_text(text)
    full = {**layout.env, "COMMITTER_REMOTE": remote, **(env or {})}
    proc = committer("init", env=full)
    assert proc.returncode == 0, proc.stderr
    return full


def pull(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return committer("pull", env=env)


def status(env: dict[str, str]) -> dict[str, object]:
    return json.loads(committer("status", "--json", env=env).stdout)  # type: ignore[no-any-return]


LINES = "".join(f"line {n}\n" for n in range(1, 11))


@integration
def test_fast_forward_writes_the_remote_changes_into_the_data_directory(
    layout: Layout, mirror: Path, tmp_path: Path
) -> None:
    env = start(layout, f"file://{mirror}", {"a.md": "a\n", "gone.md": "bye\n", "keep.md": "keep\n"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    remote_head = clone.commit({"a.md": "a, edited elsewhere\n", "new/b.md": "b\n", "gone.md": None})
    proc = pull(env)
    assert proc.returncode == 0, proc.stderr
    assert "fast-forwarded" in proc.stdout
    assert (layout.data / "a.md").read_text() == "a, edited elsewhere\n"
    assert (layout.data / "new" / "b.md").read_text() == "b\n"
    assert not (layout.data / "gone.md").exists()
    assert git(layout.git_dir, "rev-parse", "HEAD").strip() == remote_head
    # No temporary file is left behind, and nothing new is pending for the remote.
    assert sorted(p.name for p in layout.data.rglob("*")) == ["a.md", "b.md", "keep.md", "new"]
    again = status(env)
    assert again["pending_commits"] == 0 and again["last_pull_at"]
    assert "already up to date" in pull(env).stdout


@integration
def test_pull_with_nothing_new_and_with_local_commits_ahead(layout: Layout, mirror: Path) -> None:
    env = start(layout, f"file://{mirror}", {"a.md": "a\n"})
    assert "already up to date" in pull(env).stdout
    (layout.data / "b.md").write_text("local only\n")
    proc = pull(env)  # the change is committed first; the remote has nothing new
    assert proc.returncode == 0 and "ahead" in proc.stdout, proc.stdout + proc.stderr
    assert tree_files(layout.git_dir) == {"a.md", "b.md"}


@integration
def test_divergence_on_different_paths_and_lines_is_merged_and_pushed(
    layout: Layout, mirror: Path, tmp_path: Path
) -> None:
    env = start(layout, f"file://{mirror}", {"text.md": LINES, "local.md": "l\n"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    remote_head = clone.commit({"text.md": LINES.replace("line 1\n", "line 1, remote\n"), "theirs.md": "t\n"})
    (layout.data / "text.md").write_text(LINES.replace("line 10\n", "line 10, local\n"))
    (layout.data / "local.md").write_text("l, edited here\n")
    proc = pull(env)
    assert proc.returncode == 0, proc.stderr
    assert "merged" in proc.stdout and "conflict" not in proc.stdout
    merged = LINES.replace("line 1\n", "line 1, remote\n").replace("line 10\n", "line 10, local\n")
    assert (layout.data / "text.md").read_text() == merged
    assert (layout.data / "theirs.md").read_text() == "t\n"
    assert (layout.data / "local.md").read_text() == "l, edited here\n"
    parents = git(layout.git_dir, "log", "-1", "--format=%P").split()
    assert remote_head in parents and len(parents) == 2
    meta = git(layout.git_dir, "log", "-1", "--format=%(trailers:key=BM-Meta,valueonly)").strip()
    assert json.loads(meta)["op"] == "merge"
    assert git(layout.git_dir, "log", "-1", "--format=%s").strip() == "chore(sync): merge from origin"
    # Pushed: the remote now has the merge, and nothing is pending.
    assert git(mirror, "rev-parse", "main").strip() == git(layout.git_dir, "rev-parse", "HEAD").strip()
    assert status(env)["pending_commits"] == 0
    assert show(mirror, "text.md", "main").decode() == merged


@integration
def test_conflicting_edits_keep_both_versions(layout: Layout, mirror: Path, tmp_path: Path) -> None:
    env = start(layout, f"file://{mirror}", {"text.md": LINES, "bin.dat": "0000"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    theirs = LINES.replace("line 5\n", "line 5 as the remote has it\n")
    clone.commit({"text.md": theirs, "bin.dat": "1111"})
    ours = LINES.replace("line 5\n", "line 5 as written here\n")
    (layout.data / "text.md").write_text(ours)
    (layout.data / "bin.dat").write_text("2222")
    proc = pull(env)
    assert proc.returncode == 0, proc.stderr
    assert (layout.data / "text.md").read_text() == ours  # the local version keeps its path
    assert (layout.data / "bin.dat").read_text() == "2222"
    copies = sorted(p.name for p in layout.data.iterdir() if "(conflict from main, " in p.name)
    assert len(copies) == 2, copies
    text_copy = next(c for c in copies if c.endswith(".md"))
    assert text_copy.startswith("text (conflict from main, ") and text_copy.endswith(").md")
    assert (layout.data / text_copy).read_text() == theirs
    assert "<<<<<<<" not in (layout.data / text_copy).read_text() + (layout.data / "text.md").read_text()
    # Both versions are committed and pushed; status lists the conflicts; the log said git_conflict.
    assert tree_files(layout.git_dir) == {"text.md", "bin.dat", *copies}
    assert tree_files(mirror, "main") == {"text.md", "bin.dat", *copies}
    listed = status(env)["conflicts"]
    assert isinstance(listed, list) and {c["path"] for c in listed} == {"text.md", "bin.dat"}
    assert '"git_conflict"' in proc.stderr
    assert f"conflict: text.md: kept the local version; the remote's is in {text_copy}" in proc.stdout


@integration
def test_a_forced_update_on_the_remote_is_refused(layout: Layout, mirror: Path, tmp_path: Path) -> None:
    env = start(layout, f"file://{mirror}", {"a.md": "a\n"})
    (layout.data / "b.md").write_text("b\n")
    assert committer("run", "--once", env=env).returncode == 0
    ours = git(layout.git_dir, "rev-parse", "HEAD").strip()
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    clone.run("reset", "-q", "--hard", "HEAD~1")
    (clone.path / "rewritten.md").write_text("history rewritten\n")
    clone.run("add", "-A")
    clone.run("commit", "-qm", "rewrite")
    clone.run("push", "-q", "--force", "origin", "HEAD:main")
    proc = pull(env)
    assert proc.returncode == 1
    assert "refused" in proc.stderr and "forced update" in proc.stderr and "Traceback" not in proc.stderr
    assert git(layout.git_dir, "rev-parse", "HEAD").strip() == ours
    assert not (layout.data / "rewritten.md").exists()
    assert (layout.data / "b.md").read_text() == "b\n"
    error = status(env)["last_error"]
    assert isinstance(error, dict) and error["kind"] == "git_conflict" and "forced" in error["message"]


@integration
def test_a_pull_that_deletes_more_than_max_delete_is_held(layout: Layout, mirror: Path, tmp_path: Path) -> None:
    files = {f"n/{i}.md": f"{i}\n" for i in range(8)}
    env = start(layout, f"file://{mirror}", files, env={"COMMITTER_MAX_DELETE": "5"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    remote_head = clone.commit({name: None for name in list(files)[:7]})
    before = commit_count(layout.git_dir)
    proc = pull(env)
    assert proc.returncode == 1 and "held" in proc.stdout, proc.stdout + proc.stderr
    assert all((layout.data / name).exists() for name in files)
    assert commit_count(layout.git_dir) == before
    held = status(env)["held"]
    assert isinstance(held, dict) and held["reason"] == "pull_max_delete" and held["count"] == 7
    confirmed = committer("confirm-deletes", env=env)
    assert confirmed.returncode == 0, confirmed.stderr
    assert sorted(p.name for p in (layout.data / "n").iterdir()) == ["7.md"]
    assert git(layout.git_dir, "rev-parse", "HEAD").strip() == remote_head
    assert status(env)["held"] is None


@integration
def test_pull_over_http_with_a_token(layout: Layout, git_server: GitHTTPServer, tmp_path: Path) -> None:  # noqa: F811
    token = git_server.token
    env = start(layout, git_server.url, {"a.md": "a\n"}, env={"COMMITTER_TOKEN": token})
    header = "Authorization: Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()
    clone_env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader", "GIT_CONFIG_VALUE_0": header,
                 "PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    clone = Clone(git_server.url, tmp_path / "clone", env=clone_env)
    clone.commit({"a.md": "a, over http\n"})
    proc = pull(env)
    assert proc.returncode == 0, proc.stderr
    assert (layout.data / "a.md").read_text() == "a, over http\n"
    assert token not in proc.stdout + proc.stderr


@integration
def test_pull_without_a_remote_is_a_usage_error(layout: Layout) -> None:
    (layout.data / "a.md").write_text("a")
    assert committer("init", env=layout.env).returncode == 0
    proc = committer("pull", env=layout.env)
    assert proc.returncode == 2 and "remote" in proc.stderr and "Traceback" not in proc.stderr


@integration
def test_a_file_changed_while_a_pull_is_applied_is_never_overwritten(
    layout: Layout, mirror: Path, tmp_path: Path
) -> None:
    from committer.commit.committer import Committer
    from committer.core.settings import load_settings
    from committer.git.setup import open_repository
    from committer.policy.filters import PathFilter
    from committer.sync import pull as pulling

    env = start(layout, f"file://{mirror}", {"a.md": "a\n", "b.md": "b\n"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    remote_head = clone.commit({"a.md": "a, from the remote\n", "b.md": "b, from the remote\n"})
    settings = load_settings(env={k: v for k, v in env.items() if k.startswith("COMMITTER_")})
    pfilter = PathFilter(settings.data_dir, settings.ignore)
    pipeline = Committer(settings, open_repository(settings, pfilter), pfilter)
    fetched = pulling.fetch(settings, pipeline.repo)
    assert fetched == remote_head
    # Written after the daemon committed its last batch and before the pull reaches the file.
    (layout.data / "a.md").write_text("a, typed just now\n")
    from committer.sync.pullstate import PullRecord

    result = pulling.pull(pipeline, PullRecord(), fetched=fetched)
    assert result.outcome == "fast_forward"
    assert (layout.data / "a.md").read_text() == "a, typed just now\n"
    assert (layout.data / "b.md").read_text() == "b, from the remote\n"
    [conflict] = result.conflicts
    assert conflict["path"] == "a.md"
    assert (layout.data / conflict["copy"]).read_text() == "a, from the remote\n"
    # Both are in history: the remote's commit, then the local edit with the copy on top.
    assert git(layout.git_dir, "rev-parse", "HEAD~1").strip() == remote_head
    assert show(layout.git_dir, "a.md").decode() == "a, typed just now\n"
    assert show(layout.git_dir, conflict["copy"]).decode() == "a, from the remote\n"
    meta = json.loads(git(layout.git_dir, "log", "-1", "--format=%(trailers:key=BM-Meta,valueonly)").strip())
    assert meta["op"] == "conflict"


def test_tree_paths_that_would_leave_the_data_directory_are_never_written(tmp_path: Path) -> None:
    from committer.core.fsio import Tree
    from committer.sync.apply import safe as _safe

    root = tmp_path / "data"
    (root / "dir").mkdir(parents=True)
    (root / "out").symlink_to(tmp_path)
    with Tree(root) as top:
        assert _safe(top, "a.md") and _safe(top, "dir/a.md") and _safe(top, "new/deeper/a.md")
        for bad in ("../a.md", "dir/../../a.md", ".git/config", "x/.GIT/hooks/pre-commit", "/etc/passwd",
                    "out/a.md", "out/deeper/a.md"):
            assert not _safe(top, bad), bad


@integration
def test_a_folder_that_becomes_a_file_and_back(layout: Layout, mirror: Path, tmp_path: Path) -> None:
    env = start(layout, f"file://{mirror}", {"notes/only.md": "o\n", "x": "file x\n"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    clone.run("rm", "-q", "notes/only.md", "x")
    (clone.path / "notes").write_text("now a file\n")
    (clone.path / "x").mkdir()
    (clone.path / "x" / "y.md").write_text("now in a folder\n")
    remote_head = clone.commit({})
    proc = pull(env)
    assert proc.returncode == 0, proc.stderr
    assert (layout.data / "notes").read_text() == "now a file\n"
    assert (layout.data / "x" / "y.md").read_text() == "now in a folder\n"
    assert git(layout.git_dir, "rev-parse", "HEAD").strip() == remote_head


@integration
@pytest.mark.skipif(not lfs.available(), reason="git-lfs is not installed")
def test_large_files_come_back_as_files_not_pointers(mirror: Path, tmp_path: Path) -> None:
    def side(name: str) -> tuple[Path, dict[str, str]]:
        data = tmp_path / name / "data"
        data.mkdir(parents=True)
        return data, {"COMMITTER_DATA_DIR": str(data), "COMMITTER_GIT_DIR": str(tmp_path / name / "git"),
                      "COMMITTER_REMOTE": f"file://{mirror}", "COMMITTER_LFS_THRESHOLD": "4k"}

    big = os.urandom(20_000)
    first, first_env = side("first")
    (first / "big.bin").write_bytes(big)
    assert committer("init", env=first_env).returncode == 0
    # A volume restored from the remote gets the file itself.
    second, second_env = side("second")
    restored = committer("init", "--from-remote", env=second_env)
    assert restored.returncode == 0, restored.stderr
    assert (second / "big.bin").read_bytes() == big
    # A new version made on the other side arrives through a pull as a file too, with no echo commit.
    bigger = os.urandom(30_000)
    (first / "big.bin").write_bytes(bigger)
    assert committer("run", "--once", env=first_env).returncode == 0
    proc = pull(second_env)
    assert proc.returncode == 0, proc.stderr
    assert (second / "big.bin").read_bytes() == bigger
    head = git(Path(second_env["COMMITTER_GIT_DIR"]), "rev-parse", "HEAD").strip()
    assert committer("run", "--once", env=second_env).returncode == 0
    assert git(Path(second_env["COMMITTER_GIT_DIR"]), "rev-parse", "HEAD").strip() == head


@integration
def test_a_clean_merge_and_a_conflict_in_one_pull(layout: Layout, mirror: Path, tmp_path: Path) -> None:
    env = start(layout, f"file://{mirror}", {"clean.md": LINES, "clash.md": "base\n"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    clone.commit({"clean.md": LINES.replace("line 2\n", "line 2, remote\n"), "clash.md": "remote\n"})
    (layout.data / "clean.md").write_text(LINES.replace("line 9\n", "line 9, local\n"))
    (layout.data / "clash.md").write_text("local\n")
    proc = pull(env)
    assert proc.returncode == 0, proc.stderr
    merged = LINES.replace("line 2\n", "line 2, remote\n").replace("line 9\n", "line 9, local\n")
    assert (layout.data / "clean.md").read_text() == merged
    assert (layout.data / "clash.md").read_text() == "local\n"
    [copy] = [p for p in layout.data.iterdir() if "conflict from" in p.name]
    assert copy.read_text() == "remote\n"
