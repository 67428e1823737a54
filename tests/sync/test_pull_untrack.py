"""A `.bmignore` change made on one machine untracks files on every machine that pulls it, and deletes them on
none: the remote's `untrack` commit arrives as deletions of paths the pulled rules keep out of the history, so
the pull leaves them on disk and lists them in held_files. A remote deletion of a path no rule keeps out is
still a deletion. Real git, real directories, a file:// bare mirror as the remote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Layout, commit_count, committer, git, tree_files
from tests.sync.test_pull import Clone

integration = pytest.mark.integration

PRIVATE = {f"private/p{i}.md": f"private note {i}\n" for i in range(1, 4)}
KEPT_LINE = "kept 3 file(s) that the ignore rules now keep out of the history"


def replica(root: Path, name: str) -> Layout:
    data = root / name / "data"
    data.mkdir(parents=True)
    git_dir = root / name / "knowledge.git"
    return Layout(root / name, data, git_dir, {"COMMITTER_DATA_DIR": str(data), "COMMITTER_GIT_DIR": str(git_dir)})


def ok(*args: str, env: dict[str, str]) -> str:
    proc = committer(*args, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def head(git_dir: Path, rev: str = "HEAD") -> str:
    return git(git_dir, "rev-parse", rev).strip()


def held_paths(env: dict[str, str]) -> dict[str, str]:
    status = json.loads(committer("status", "--json", env=env).stdout)
    return {item["path"]: item["reason"] for item in status["held_files"]}


def two_replicas(tmp_path: Path, mirror: Path, b_env: dict[str, str] | None = None) -> tuple[Layout, dict[str, str],
                                                                                               Layout, dict[str, str]]:
    """A with private/p1..p3.md and note.md, committed and pushed; B taken from the remote."""
    url = f"file://{mirror}"
    a, b = replica(tmp_path, "a"), replica(tmp_path, "b")
    for name, text in {**PRIVATE, "note.md": "note\n", "other.md": "other\n"}.items():
        (a.data / name).parent.mkdir(parents=True, exist_ok=True)
        (a.data / name).write_text(text)
    a_env = {**a.env, "COMMITTER_REMOTE": url}
    ok("init", env=a_env)
    ok("run", "--once", env=a_env)
    b_env = {**b.env, "COMMITTER_REMOTE": url, **(b_env or {})}
    ok("init", "--from-remote", env=b_env)
    assert {p.relative_to(b.data).as_posix() for p in b.data.rglob("*.md")} == {*PRIVATE, "note.md", "other.md"}
    return a, a_env, b, b_env


def untrack_on_a(a: Layout, a_env: dict[str, str], mirror: Path) -> None:
    (a.data / ".bmignore").write_text("private/\n")
    out = ok("run", "--once", env=a_env)
    assert '"op": "untrack"' in out and '"deleted": 3' in out
    assert all((a.data / name).exists() for name in PRIVATE)  # A's disk keeps them
    assert not tree_files(mirror, "main") & set(PRIVATE)


def assert_b_keeps_them(b: Layout, b_env: dict[str, str], mirror: Path, out: str) -> None:
    for name, text in PRIVATE.items():
        assert (b.data / name).read_text() == text, name
    assert (b.data / ".bmignore").read_text() == "private/\n"
    assert head(b.git_dir) == head(mirror, "main")
    assert not tree_files(b.git_dir) & set(PRIVATE)
    assert KEPT_LINE in out
    assert '"pull_kept_untracked"' in out
    assert held_paths(b_env) == {"private": "name:private/"}
    # B's next run commits nothing: the kept files are neither added back nor deleted.
    before, commits = head(b.git_dir), commit_count(b.git_dir)
    ok("run", "--once", env=b_env)
    assert head(b.git_dir) == before and commit_count(b.git_dir) == commits
    assert head(mirror, "main") == before
    assert all((b.data / name).exists() for name in PRIVATE)
    assert held_paths(b_env) == {"private": "name:private/"}


@integration
def test_a_bmignore_pulled_from_the_remote_untracks_here_and_deletes_nothing(tmp_path: Path, mirror: Path) -> None:
    a, a_env, b, b_env = two_replicas(tmp_path, mirror)
    untrack_on_a(a, a_env, mirror)
    out = ok("pull", env=b_env)
    assert "0 deleted" in out, out
    assert_b_keeps_them(b, b_env, mirror, out)


@integration
def test_untracked_paths_do_not_count_toward_max_delete_and_a_confirmed_pull_keeps_them(
    tmp_path: Path, mirror: Path
) -> None:
    # Two notes deleted on the remote beside the three untracked files: with max_delete 1 the pull is held for
    # the two real deletions only, and confirm-deletes deletes those two and keeps the three.
    a, a_env, b, b_env = two_replicas(tmp_path, mirror, {"COMMITTER_MAX_DELETE": "1"})
    (a.data / "note.md").unlink()
    (a.data / "other.md").unlink()
    untrack_on_a(a, a_env, mirror)
    held = committer("pull", env=b_env)
    assert held.returncode == 1 and "would delete 2 files" in held.stdout, held.stdout + held.stderr
    assert (b.data / "note.md").exists() and all((b.data / name).exists() for name in PRIVATE)
    out = ok("confirm-deletes", env=b_env)
    assert not (b.data / "note.md").exists() and not (b.data / "other.md").exists()
    assert_b_keeps_them(b, b_env, mirror, out)


@integration
def test_a_remote_deletion_of_a_path_no_rule_keeps_out_still_deletes_it(tmp_path: Path, mirror: Path) -> None:
    a, a_env, b, b_env = two_replicas(tmp_path, mirror)
    untrack_on_a(a, a_env, mirror)
    ok("pull", env=b_env)
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    remote_head = clone.commit({"note.md": None})  # deleted on the remote; no rule keeps it out
    out = ok("pull", env=b_env)
    assert "1 deleted" in out and "now keep out of the history" not in out, out
    assert not (b.data / "note.md").exists()
    assert (b.data / "other.md").read_text() == "other\n"
    assert all((b.data / name).exists() for name in PRIVATE)
    assert head(b.git_dir) == remote_head
