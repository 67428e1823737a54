"""A pull never wedges and never half-applies a path: a remote name this filesystem cannot hold, or a folder
swapped for a symlink while the pull runs, is skipped, kept in git, listed as unwritable_paths, and never
turned into a deletion; a remote deletion of a note changed here is a conflict, listed until resolved."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from committer.core.events import PathLists
from committer.sync import apply as apply_module
from committer.sync import pull as pull_module
from committer.sync.pullstate import PullRecord
from committer.sync.unwritable import retry_unwritable
from tests.commit.test_pipeline import make_pipeline
from tests.conftest import DaemonProcess, Layout, committer, git, tree_files, wait_for
from tests.sync.test_pull import Clone, pull, start, status

pytestmark = pytest.mark.integration

LONG = "notes/" + "長い名前" * 22 + ".md"  # 264 bytes in one name: more than any Linux filesystem holds


def plumb(clone: Clone, files: dict[str, str], message: str = "made elsewhere") -> str:
    """A commit with names the clone's own disk may not hold, made with plumbing, and pushed."""
    clone.run("fetch", "-q", "origin")
    clone.run("reset", "-q", "--soft", "origin/main")
    for path, text in files.items():
        (clone.path / "blob.tmp").write_text(text)
        sha = clone.run("hash-object", "-w", "blob.tmp").strip()
        clone.run("update-index", "--add", "--cacheinfo", f"100644,{sha},{path}")
    (clone.path / "blob.tmp").unlink()
    clone.run("commit", "-qm", message)
    clone.run("push", "-q", "origin", "HEAD:main")
    return clone.run("rev-parse", "HEAD").strip()


def test_a_remote_name_too_long_here_is_skipped_kept_in_git_and_listed(
    layout: Layout, mirror: Path, tmp_path: Path
) -> None:
    assert len(LONG.split("/")[1].encode()) > 255
    env = start(layout, f"file://{mirror}", {"notes/a.md": "a\n"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    remote_head = plumb(clone, {LONG: "a name from macOS\n", "notes/b.md": "b from the remote\n"})
    proc = pull(env)
    assert proc.returncode == 0, proc.stderr
    assert (layout.data / "notes" / "b.md").read_text() == "b from the remote\n"  # the rest of the pull went on
    assert git(layout.git_dir, "rev-parse", "HEAD").strip() == remote_head  # kept in git
    assert '"pull_path_unwritable"' in proc.stderr
    assert f"not written here: {LONG}: cannot write it here: File name too long" in proc.stdout
    listed = status(env)["unwritable_paths"]
    assert isinstance(listed, list) and [u["path"] for u in listed] == [LONG]
    assert "too long" in listed[0]["reason"]
    assert f"{LONG}: cannot write it here: File name too long (kept in git" in committer("status", env=env).stdout
    # The next reconcile and push go on, and never turn the missing file into a deletion.
    (layout.data / "notes" / "c.md").write_text("written here\n")
    run = committer("run", "--once", env=env)
    assert run.returncode == 0, run.stderr
    assert LONG in tree_files(layout.git_dir) and "notes/c.md" in tree_files(layout.git_dir)
    assert git(mirror, "rev-parse", "main").strip() == git(layout.git_dir, "rev-parse", "HEAD").strip()
    assert LONG in tree_files(mirror, "main")
    again = pull(env)
    assert again.returncode == 0, again.stderr
    assert [u["path"] for u in status(env)["unwritable_paths"]] == [LONG]
    # A restore of the folder writes what it can, and says what it could not.
    (layout.data / "notes" / "b.md").write_text("b, then restored\n")
    assert committer("run", "--once", env=env).returncode == 0
    restored = committer("restore", "notes", "--to", "HEAD~1", env=env)
    assert restored.returncode == 1, restored.stderr  # the rest is restored; what could not be is named
    assert f"could not restore {LONG}: File name too long" in restored.stdout
    assert "except 1 path(s) that could not be written" in restored.stdout
    assert (layout.data / "notes" / "b.md").read_text() == "b from the remote\n"
    assert LONG in tree_files(layout.git_dir)


def test_the_unwritable_path_leaves_the_list_when_the_remote_renames_it(
    layout: Layout, mirror: Path, tmp_path: Path
) -> None:
    env = start(layout, f"file://{mirror}", {"a.md": "a\n"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    plumb(clone, {LONG: "too long\n"})
    assert pull(env).returncode == 0
    assert status(env)["unwritable_paths"]
    clone.run("rm", "-q", "--cached", LONG)
    clone.run("update-index", "--add", "--cacheinfo",
              f"100644,{clone.run('rev-parse', f'HEAD:{LONG}').strip()},notes/short.md")
    clone.run("commit", "-qm", "shorter name")
    clone.run("push", "-q", "origin", "HEAD:main")
    proc = pull(env)
    assert proc.returncode == 0, proc.stderr
    assert (layout.data / "notes" / "short.md").read_text() == "too long\n"
    assert status(env)["unwritable_paths"] == []


def test_a_remote_deletion_of_a_note_changed_here_is_a_conflict_until_resolved(
    layout: Layout, mirror: Path, tmp_path: Path
) -> None:
    env = start(layout, f"file://{mirror}", {"a.md": "a\n", "b.md": "b\n"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    clone.commit({"a.md": None})
    (layout.data / "a.md").write_text("a, edited here\n")
    proc = pull(env)
    assert proc.returncode == 0, proc.stderr
    assert (layout.data / "a.md").read_text() == "a, edited here\n"  # the local version stays
    assert "a.md" in tree_files(layout.git_dir) and "a.md" in tree_files(mirror, "main")
    assert "conflict: a.md: kept the local version; deleted on the remote, changed here" in proc.stdout
    logged = [json.loads(line) for line in proc.stderr.splitlines() if '"git_conflict"' in line]
    assert logged and logged[0]["path"] == "a.md"
    listed = status(env)["conflicts"]
    assert isinstance(listed, list) and [(c["path"], c["copy"]) for c in listed] == [("a.md", "")]
    assert "a.md: deleted on the remote, changed here" in committer("status", env=env).stdout
    # Another commit elsewhere keeps it listed; editing the note again resolves it.
    (layout.data / "b.md").write_text("b, edited\n")
    assert committer("run", "--once", env=env).returncode == 0
    assert [c["path"] for c in status(env)["conflicts"]] == ["a.md"]
    (layout.data / "a.md").write_text("a, edited again: kept on purpose\n")
    assert committer("run", "--once", env=env).returncode == 0
    assert status(env)["conflicts"] == []


def test_a_conflict_copy_deleted_leaves_the_list(layout: Layout, mirror: Path, tmp_path: Path) -> None:
    env = start(layout, f"file://{mirror}", {"a.md": "a\n"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    clone.commit({"a.md": "a, theirs\n"})
    (layout.data / "a.md").write_text("a, ours\n")
    assert pull(env).returncode == 0
    listed = status(env)["conflicts"]
    assert isinstance(listed, list) and len(listed) == 1
    (layout.data / str(listed[0]["copy"])).unlink()
    assert committer("run", "--once", env=env).returncode == 0
    assert status(env)["conflicts"] == []


@pytest.mark.parametrize("when", ["between fetch and apply", "half-way through the writes"])
def test_a_folder_swapped_for_a_link_during_a_pull_is_never_half_committed(
    layout: Layout, mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    env = start(layout, f"file://{mirror}", {"top.md": "top\n", "d/keep.md": "keep\n"})
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    files = {f"d/n{i:02}.md": f"note {i}\n" for i in range(10)}
    clone.commit({**files, "top.md": "top, edited there\n"})
    pipeline = make_pipeline(layout, remote=env["COMMITTER_REMOTE"])
    real_write, real_changes = apply_module.write_entry, pull_module.write_changes
    swapped: list[str] = []

    def swap(what: str) -> None:
        os.rename(layout.data / "d", layout.data / "d.real")
        os.symlink("d.real", layout.data / "d")
        swapped.append(what)

    def write_then_swap(*args: Any, **kwargs: Any) -> bool:
        done = real_write(*args, **kwargs)
        if args[2] == "d/n04.md" and not swapped:  # half-way through d/: the folder becomes a link
            swap(args[2])
        return done

    def swap_then_write(*args: Any, **kwargs: Any) -> Any:
        swap("before")
        return real_changes(*args, **kwargs)

    if when == "between fetch and apply":
        monkeypatch.setattr(pull_module, "write_changes", swap_then_write)
        written_before = 0
    else:
        monkeypatch.setattr(apply_module, "write_entry", write_then_swap)
        written_before = 5
    record = PullRecord()
    result = pull_module.pull(pipeline, record)
    assert swapped and result.outcome == pull_module.FAST_FORWARD
    assert (layout.data / "top.md").read_text() == "top, edited there\n"
    # Nothing was written through the link, and every path of d/ is unwritable now, none half-applied.
    expected = ["keep.md", *[f"n{i:02}.md" for i in range(written_before)]]
    assert sorted(p.name for p in (layout.data / "d.real").iterdir()) == expected
    assert set(record.unwritable()) == set(files)
    assert all("symbolic link" in r for r in record.unwritable().values())
    # The next reconcile commits what is on disk (d.real/) and never deletes d/ from the branch, nor
    # commits the link over it: the link is listed as held.
    pipeline.reconcile()
    tracked = tree_files(layout.git_dir)
    assert set(files) <= tracked and "d/keep.md" in tracked and "d" not in tracked
    assert {f"d.real/n{i:02}.md" for i in range(written_before)} | {"d.real/keep.md"} <= tracked
    assert "d" in pipeline.held
    # The link removed, the next reconcile of the daemon (or pull) writes the remote's d/ as it is in git.
    (layout.data / "d").unlink()
    retry_unwritable(pipeline, record)
    assert record.unwritable() == {} and not pipeline.step.pinned
    assert all((layout.data / p).read_text() == text for p, text in files.items())
    pipeline.reconcile()
    assert set(files) <= tree_files(layout.git_dir) and "d" not in pipeline.held


def test_an_unwritable_path_does_not_stop_the_others(tmp_path: Path, layout: Layout) -> None:
    """write_changes records the failure of one path and writes the rest (no exception)."""
    pipeline = make_pipeline(layout)
    (layout.data / "x.md").write_text("x\n")
    pipeline.commit([""])
    found: dict[str, str] = {}
    done = PathLists("written", "deleted")
    blob = git(layout.git_dir, "rev-parse", "HEAD:x.md").strip()
    from committer.git.objects import TreeEntry

    entry = TreeEntry("100644", blob)
    changes = {"y" * 300 + ".md": (None, entry), "ok.md": (None, entry)}
    blobs = apply_module.Blobs(pipeline.repo, {blob})
    written, _deleted, _conflicts, _wins = apply_module.write_changes(pipeline, changes, blobs, 0.0, set(), done,
                                                                      found)
    assert written == 1 and (layout.data / "ok.md").read_text() == "x\n"
    assert list(found) == ["y" * 300 + ".md"]


def test_healthz_says_degraded_while_a_remote_path_cannot_be_written(
    layout: Layout, mirror: Path, tmp_path: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    from tests.daemon.test_daemon_http import free_port, get

    start(layout, f"file://{mirror}", {"a.md": "a\n"})
    port = free_port()
    daemon = start_daemon("--http", f"127.0.0.1:{port}", "--remote", f"file://{mirror}",
                          env={"COMMITTER_PULL_INTERVAL": "300ms", "COMMITTER_PUSH_INTERVAL": "200ms"})
    health = json.loads(get(f"http://127.0.0.1:{port}/healthz")[1])
    assert health["degraded"] is False and health["degraded_reasons"] == []
    clone = Clone(f"file://{mirror}", tmp_path / "clone")
    plumb(clone, {LONG: "long\n", "b.md": "b\n"})

    def degraded() -> dict[str, Any] | None:
        found = json.loads(get(f"http://127.0.0.1:{port}/healthz")[1])
        return found if found["degraded"] else None

    found = wait_for(degraded, what="/healthz degraded")
    assert "cannot be written here" in found["degraded_reasons"][0]
    assert (layout.data / "b.md").read_text() == "b\n"
    # Commits and pushes go on.
    (layout.data / "c.md").write_text("c\n")
    wait_for(lambda: "c.md" in tree_files(mirror, "main"), what="the next push")
    assert LONG in tree_files(mirror, "main")
    assert daemon.stop() == 0


def test_a_push_refused_because_the_remote_moved_says_what_to_do(layout: Layout, mirror: Path, tmp_path: Path) -> None:
    env = start(layout, f"file://{mirror}", {"a.md": "a\n"})
    Clone(f"file://{mirror}", tmp_path / "clone").commit({"b.md": "b\n"})
    (layout.data / "a.md").write_text("a, here\n")
    committer("run", "--once", env=env)  # the push is refused: the remote moved ahead
    found = status(env)["last_error"]
    assert isinstance(found, dict) and found["kind"] == "non_fast_forward"
    assert "run `committer pull`" in found["hint"] and "pull_interval" in found["hint"]
    shown = committer("status", env=env).stdout
    assert "what to do" in shown and "committer pull" in shown
    assert pull(env).returncode == 0
    assert git(mirror, "rev-parse", "main").strip() == git(layout.git_dir, "rev-parse", "HEAD").strip()
    assert status(env)["last_error"] is None


def test_an_lfs_object_that_cannot_be_downloaded_never_puts_a_pointer_in_place_of_content(
    mirror: Path, tmp_path: Path
) -> None:
    import hashlib
    import shutil

    from committer.git import lfs

    if shutil.which("git-lfs") is None:
        pytest.skip("git-lfs is not installed")

    def side(name: str) -> tuple[Path, dict[str, str]]:
        data = tmp_path / name / "data"
        data.mkdir(parents=True)
        return data, {"COMMITTER_DATA_DIR": str(data), "COMMITTER_GIT_DIR": str(tmp_path / name / "git"),
                      "COMMITTER_REMOTE": f"file://{mirror}", "COMMITTER_LFS_THRESHOLD": "4k"}

    v1, v2 = os.urandom(20_000), os.urandom(30_000)
    first, first_env = side("first")
    (first / "big.bin").write_bytes(v1)
    assert committer("init", env=first_env).returncode == 0
    second, second_env = side("second")
    assert committer("init", "--from-remote", env=second_env).returncode == 0
    assert (second / "big.bin").read_bytes() == v1
    (first / "big.bin").write_bytes(v2)
    (first / "new.bin").write_bytes(v2 + b"new")
    assert committer("run", "--once", env=first_env).returncode == 0
    # The remote's LFS storage loses both new objects: the downloads fail.
    kept = tmp_path / "kept"
    kept.mkdir()
    for content in (v2, v2 + b"new"):
        oid = hashlib.sha256(content).hexdigest()
        shutil.move(lfs.object_path(mirror, oid), kept / oid)
    proc = pull(second_env)
    assert proc.returncode == 0, proc.stderr
    assert (second / "big.bin").read_bytes() == v1  # the previous content, never the pointer
    assert not (second / "new.bin").exists()  # a new file is not written as its pointer
    listed = {u["path"]: u["reason"] for u in status(second_env)["unwritable_paths"]}  # type: ignore[union-attr]
    assert set(listed) == {"big.bin", "new.bin"} and "LFS object" in listed["big.bin"]
    head = git(Path(second_env["COMMITTER_GIT_DIR"]), "rev-parse", "HEAD").strip()
    assert committer("run", "--once", env=second_env).returncode == 0  # v1 is not committed back
    assert git(Path(second_env["COMMITTER_GIT_DIR"]), "rev-parse", "HEAD").strip() == head
    # The storage has them again: the next pull fetches and writes them.
    for content in (v2, v2 + b"new"):
        oid = hashlib.sha256(content).hexdigest()
        shutil.move(kept / oid, lfs.object_path(mirror, oid))
    again = pull(second_env)
    assert again.returncode == 0, again.stderr
    assert (second / "big.bin").read_bytes() == v2 and (second / "new.bin").read_bytes() == v2 + b"new"
    assert status(second_env)["unwritable_paths"] == []


def test_confirming_a_held_pull_never_deletes_a_note_changed_here(layout: Layout, mirror: Path, tmp_path: Path) -> None:
    env = start(layout, f"file://{mirror}", {"a.md": "a\n", "b.md": "b\n", "c.md": "c\n"},
                env={"COMMITTER_MAX_DELETE": "1"})
    Clone(f"file://{mirror}", tmp_path / "clone").commit({"a.md": None, "b.md": None})
    held = pull(env)
    assert held.returncode == 1 and status(env)["held"], held.stdout + held.stderr  # held: exit 1
    (layout.data / "a.md").write_text("a, edited here while the pull was held\n")
    proc = committer("confirm-deletes", env=env)
    assert proc.returncode == 0, proc.stderr
    assert (layout.data / "a.md").read_text() == "a, edited here while the pull was held\n"
    assert not (layout.data / "b.md").exists()
    assert "a.md" in tree_files(layout.git_dir) and "b.md" not in tree_files(layout.git_dir)
    assert [c["path"] for c in status(env)["conflicts"]] == ["a.md"]


def test_the_daemon_tells_a_remote_deletion_kept_here_as_a_git_conflict_event(
    layout: Layout, mirror: Path, tmp_path: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    from tests.daemon.test_daemon_events import SECRET, notify_env
    from tests.receiver import receiving

    (layout.data / "a.md").write_text("a\n")
    with receiving(SECRET) as receiver:
        env = {**notify_env(layout, receiver.url), "COMMITTER_REMOTE": f"file://{mirror}",
               "COMMITTER_PUSH_INTERVAL": "200ms", "COMMITTER_PULL_INTERVAL": "300ms"}
        assert committer("init", env=env).returncode == 0
        Clone(f"file://{mirror}", tmp_path / "clone").commit({"a.md": None})
        (layout.data / "a.md").write_text("a, edited here\n")
        daemon = start_daemon(env=env)
        conflict = receiver.wait("git_conflict")[0]
        assert conflict["path"] == "a.md" and conflict["copy"] == ""
        assert conflict["why"] == "deleted on the remote, changed here"
        wait_for(lambda: "a.md" in tree_files(mirror, "main"), what="the kept note pushed back")
        assert (layout.data / "a.md").read_text() == "a, edited here\n"
        assert daemon.stop() == 0
    assert [c["path"] for c in status(env)["conflicts"]] == ["a.md"]


def test_a_remote_deletion_that_cannot_be_done_here_is_not_undone_and_is_done_later(
    layout: Layout, mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from committer.core import fsio

    env = start(layout, f"file://{mirror}", {"a.md": "a\n", "gone.md": "bye\n"})
    Clone(f"file://{mirror}", tmp_path / "clone").commit({"gone.md": None, "a.md": "a, there\n"})
    pipeline = make_pipeline(layout, remote=env["COMMITTER_REMOTE"])
    real_remove = fsio.Tree.remove

    def refuse(self: fsio.Tree, rel: str) -> bool:
        if rel == "gone.md":
            raise PermissionError(13, "Permission denied", rel)
        return real_remove(self, rel)

    monkeypatch.setattr(fsio.Tree, "remove", refuse)
    record = PullRecord()
    pull_module.pull(pipeline, record)
    assert (layout.data / "a.md").read_text() == "a, there\n"
    assert (layout.data / "gone.md").exists() and "cannot delete" in record.unwritable()["gone.md"]
    pipeline.reconcile()
    assert "gone.md" not in tree_files(layout.git_dir)  # the remote's deletion is not undone
    monkeypatch.setattr(fsio.Tree, "remove", real_remove)
    retry_unwritable(pipeline, record)
    assert not (layout.data / "gone.md").exists() and record.unwritable() == {}
