"""The commit step on a real repository: exact paths, exact counts, awkward files."""

from __future__ import annotations

import json
import os
import subprocess
import unicodedata
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from committer.commit.committer import Committer
from committer.commit.step import SIZES, Sizes
from committer.core.settings import load_settings
from committer.git.setup import open_repository
from committer.policy.filters import PathFilter
from tests.conftest import Layout, commit_count, git, show, tree_files


def make_pipeline(layout: Layout, sizes: Sizes = SIZES, **env: str) -> Committer:
    """The commit side of the layout's repository; `env`: settings as COMMITTER_<NAME> would give them."""
    settings = load_settings(flags={"data_dir": str(layout.data), "git_dir": str(layout.git_dir)},
                             env={f"COMMITTER_{name.upper()}": value for name, value in env.items()})
    pfilter = PathFilter(settings.data_dir, settings.ignore)
    repo = open_repository(settings, pfilter)
    return Committer(settings, repo, pfilter, sizes=sizes)


def trailer(layout: Layout, rev: str = "HEAD") -> dict[str, object]:
    raw = git(layout.git_dir, "log", "-1", "--format=%(trailers:key=BM-Meta,valueonly)", rev).strip()
    value = json.loads(raw)
    assert isinstance(value, dict)
    return value


def write(layout: Layout, rel: str, text: str | bytes = "x") -> Path:
    path = layout.data / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


AWKWARD = [
    "with space.md",
    "-leading-dash.md",
    "--help",
    unicodedata.normalize("NFC", "café.md"),
    unicodedata.normalize("NFD", "naïve.md"),
    "hash#tag.md",
    "star*.md",
    "colon:name.md",
    "new\nline.md",
    '"quoted".md',
    "back\\slash.md",
    "tab\there.md",
    "deep/ünï/cödé/ok.md",
]


def test_awkward_file_names_are_committed_byte_for_byte(layout: Layout) -> None:
    p = make_pipeline(layout)
    for i, name in enumerate(AWKWARD):
        write(layout, name, f"content {i}")
    result = p.commit(AWKWARD)
    assert result.sha is not None
    assert tree_files(layout.git_dir) == set(AWKWARD)
    for i, name in enumerate(AWKWARD):
        if "\n" not in name:  # cat-file's rev:path syntax cannot name a path with a newline
            assert show(layout.git_dir, name) == f"content {i}".encode()
    # both normalisation forms survive as distinct byte sequences
    raw = git(layout.git_dir, "ls-tree", "-r", "-z", "--name-only", "HEAD").encode("utf-8", "surrogateescape")
    assert "naïve".encode() not in raw and unicodedata.normalize("NFD", "naïve").encode() in raw
    # deleting them all works just as well
    for name in AWKWARD:
        (layout.data / name).unlink()
    assert p.commit(AWKWARD).changes.counts.deleted == len(AWKWARD)
    assert tree_files(layout.git_dir) == set()


def test_counts_of_added_modified_deleted_and_renamed(layout: Layout) -> None:
    p = make_pipeline(layout)
    for name in ("keep.md", "edit.md", "gone.md", "old-name.md"):
        write(layout, name, f"{name} v1")
    p.commit(["keep.md", "edit.md", "gone.md", "old-name.md"])
    write(layout, "edit.md", "v2")
    (layout.data / "gone.md").unlink()
    os.rename(layout.data / "old-name.md", layout.data / "new-name.md")
    write(layout, "fresh.md", "new")
    result = p.commit(["edit.md", "gone.md", "old-name.md", "new-name.md", "fresh.md", "keep.md"])
    counts = result.changes.counts
    assert (counts.added, counts.modified, counts.deleted, counts.renamed) == (1, 1, 1, 1)
    meta = trailer(layout)
    assert (meta["added"], meta["modified"], meta["deleted"], meta["renamed"]) == (1, 1, 1, 1)
    assert meta["v"] == 1 and meta["host"] and meta["batch"] == result.batch
    subject = git(layout.git_dir, "log", "-1", "--format=%s")
    assert subject.strip() in ("chore(sync): save edit.md and 3 more", "chore(sync): save fresh.md and 3 more")
    assert tree_files(layout.git_dir) == {"keep.md", "edit.md", "new-name.md", "fresh.md"}


def test_unchanged_content_makes_no_commit(layout: Layout) -> None:
    p = make_pipeline(layout)
    write(layout, "a.md", "same")
    p.commit(["a.md"])
    before = commit_count(layout.git_dir)
    (layout.data / "a.md").touch()
    assert p.commit(["a.md"]).sha is None
    assert p.commit(["never-existed.md", "a.md"]).sha is None
    assert commit_count(layout.git_dir) == before


def test_a_directory_move_reported_as_one_path_moves_every_file(layout: Layout) -> None:
    p = make_pipeline(layout)
    for i in range(30):
        write(layout, f"proj/sub{i % 3}/n{i}.md", f"note {i}")
    p.commit(["proj"])
    os.rename(layout.data / "proj", layout.data / "archive")
    result = p.commit(["proj", "archive"])
    assert result.changes.counts.renamed == 30
    assert all(f.startswith("archive/") for f in tree_files(layout.git_dir))
    assert len(tree_files(layout.git_dir)) == 30


def test_file_and_directory_can_swap_places(layout: Layout) -> None:
    p = make_pipeline(layout)
    write(layout, "thing", "a file")
    p.commit(["thing"])
    (layout.data / "thing").unlink()
    write(layout, "thing/inside.md", "now a folder")
    p.commit(["thing"])
    assert tree_files(layout.git_dir) == {"thing/inside.md"}
    (layout.data / "thing" / "inside.md").unlink()
    (layout.data / "thing").rmdir()
    write(layout, "thing", "a file again")
    p.commit(["thing", "thing/inside.md"])
    assert tree_files(layout.git_dir) == {"thing"}


def test_symlinks_are_committed_as_links_and_never_followed(layout: Layout, tmp_path: Path) -> None:
    outside = tmp_path / "outside-secret.txt"
    outside.write_text("not for the repository")
    (tmp_path / "outside-dir").mkdir()
    (tmp_path / "outside-dir" / "big.md").write_text("must not be walked")
    p = make_pipeline(layout)
    os.symlink(outside, layout.data / "link-to-file")
    os.symlink(tmp_path / "outside-dir", layout.data / "link-to-dir")
    os.symlink("missing-target", layout.data / "dangling")
    p.commit([""])
    assert tree_files(layout.git_dir) == {"link-to-file", "link-to-dir", "dangling"}
    entry = git(layout.git_dir, "ls-tree", "HEAD", "link-to-file")
    assert entry.startswith("120000 ")
    assert show(layout.git_dir, "link-to-file") == str(outside).encode()


def test_nested_repository_is_skipped_with_a_warning_never_a_gitlink(layout: Layout) -> None:
    nested = layout.data / "vendor" / "lib"
    nested.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(nested)], check=True)
    write(layout, "vendor/lib/code.py", "print()")
    write(layout, "vendor/readme.md", "ok")
    p = make_pipeline(layout)
    with capture_logs() as logs:
        p.commit([""])
        p.commit(["vendor/lib/code.py", "vendor/lib"])
    assert tree_files(layout.git_dir) == {"vendor/readme.md"}
    assert "160000" not in git(layout.git_dir, "ls-tree", "-r", "HEAD")
    skips = [e for e in logs if e["event"] == "skip"]
    assert skips and skips[0]["path"] == "vendor/lib" and "nested" in skips[0]["reason"]
    assert len(skips) == 1, "one warning per path, not one per batch"
    assert p.held.listing() == [{"path": "vendor/lib", "reason": "nested git repository"}]


def test_special_files_are_skipped_and_the_rest_committed(layout: Layout) -> None:
    os.mkfifo(layout.data / "pipe")
    write(layout, "ok.md")
    p = make_pipeline(layout)
    p.commit(["pipe", "ok.md"])
    assert tree_files(layout.git_dir) == {"ok.md"}


def test_editor_and_temp_files_are_never_committed(layout: Layout) -> None:
    names = [".note.md.swp", "note.md~", ".#note.md", "upload.tmp", "x.partial", ".DS_Store", ".env"]
    for name in names:
        write(layout, name)
    write(layout, "note.md")
    p = make_pipeline(layout)
    p.commit([*names, "note.md"])
    assert tree_files(layout.git_dir) == {"note.md"}


def test_executable_bit_is_kept(layout: Layout) -> None:
    script = write(layout, "run.sh", "#!/bin/sh\n")
    script.chmod(0o755)
    p = make_pipeline(layout)
    p.commit(["run.sh"])
    assert git(layout.git_dir, "ls-tree", "HEAD", "run.sh").startswith("100755 ")
    script.chmod(0o644)
    assert p.commit(["run.sh"]).changes.counts.modified == 1


def test_bmmeta_goes_into_the_trailer_and_bad_json_is_left_out(layout: Layout) -> None:
    p = make_pipeline(layout)
    (layout.data / ".bmmeta").write_text('{"actor": "sync", "device": "laptop"}')
    write(layout, "a.md", "1")
    p.commit(["a.md", ".bmmeta"])
    assert trailer(layout)["bmmeta"] == {"actor": "sync", "device": "laptop"}
    assert ".bmmeta" not in tree_files(layout.git_dir)
    (layout.data / ".bmmeta").write_text("{not json")
    write(layout, "a.md", "2")
    with capture_logs() as logs:
        assert p.commit(["a.md"]).sha is not None
    assert "bmmeta" not in trailer(layout)
    assert [e for e in logs if e["event"] == "bmmeta_invalid"]


def test_reconcile_commits_what_changed_while_nobody_watched(layout: Layout) -> None:
    for i in range(20):
        write(layout, f"n{i}.md", str(i))
    p = make_pipeline(layout)
    assert p.reconcile(op="init").changes.counts.added == 20
    # behind the pipeline's back: edit, delete, add, and a commit through the fast path
    write(layout, "n1.md", "edited")
    (layout.data / "n2.md").unlink()
    write(layout, "later/new.md", "new")
    write(layout, "n3.md", "fast path")
    p.commit(["n3.md"])
    result = p.reconcile()
    counts = result.changes.counts
    assert (counts.added, counts.modified, counts.deleted) == (1, 1, 1)
    assert trailer(layout)["op"] == "reconcile"
    # afterwards git itself sees a clean work tree: the index was brought back in line
    status = git(layout.git_dir, f"--work-tree={layout.data}", "status", "--porcelain")
    assert status == ""
    assert p.reconcile().sha is None


def test_the_data_directory_gets_no_git_files(layout: Layout) -> None:
    write(layout, "a.md")
    p = make_pipeline(layout)
    p.reconcile()
    assert sorted(os.listdir(layout.data)) == ["a.md"]


@pytest.mark.parametrize("size", [0, 1, 1 << 20, (3 << 20) + 7])
def test_file_sizes_round_trip(layout: Layout, size: int) -> None:
    data = os.urandom(size)
    write(layout, "blob.bin", data)
    p = make_pipeline(layout)
    p.commit(["blob.bin"])
    assert show(layout.git_dir, "blob.bin") == data


def test_reconcile_is_right_when_started_from_inside_the_data_directory(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(layout, "sub/deeper/a.md", "a")
    write(layout, "top.md", "t")
    p = make_pipeline(layout)
    p.reconcile(op="init")
    write(layout, "sub/deeper/a.md", "changed")
    write(layout, "top.md", "changed too")
    monkeypatch.chdir(layout.data / "sub")
    assert p.reconcile().changes.counts.modified == 2
    assert show(layout.git_dir, "top.md") == b"changed too"


def test_no_commit_carries_more_than_max_batch_files(layout: Layout) -> None:
    settings = load_settings(flags={"data_dir": str(layout.data), "git_dir": str(layout.git_dir),
                                    "max_batch_files": 10})
    pfilter = PathFilter(settings.data_dir, settings.ignore)
    p = Committer(settings, open_repository(settings, pfilter), pfilter)
    for i in range(25):
        write(layout, f"bulk/{i:02}.md", str(i))
    result = p.commit(["bulk"])
    assert result.sha is not None
    assert commit_count(layout.git_dir) == 3
    assert len(tree_files(layout.git_dir)) == 25
    counts = [len(git(layout.git_dir, "show", "--name-only", "--format=", f"HEAD~{n}").split()) for n in range(3)]
    assert counts == [5, 10, 10]
    parts = [trailer(layout, f"HEAD~{n}")["part"] for n in range(3)]
    assert parts == ["3/3", "2/3", "1/3"]


def test_maintenance_rolls_up_the_packs_small_commits_leave(layout: Layout) -> None:
    from committer.daemon.maintenance import maintain as _maintain

    p = make_pipeline(layout)
    for i in range(40):
        write(layout, "busy.md", f"version {i}")
        p.commit(["busy.md"])
    before = p.repo.size()
    # each commit is a pack of its own, its index fsynced with it; no unpacking into loose objects
    assert before["objects"] >= 100 and before["packs"] == 40 and before["loose"] == 0
    assert not _maintain(p.repo, pack_limit=50)  # below the limits: nothing to do
    assert _maintain(p.repo)
    after = p.repo.size()
    assert after["packs"] < 5 and after["objects"] >= 120
    assert subprocess.run(["git", f"--git-dir={layout.git_dir}", "fsck", "--no-dangling"],
                          capture_output=True).returncode == 0


def test_maintenance_rolls_the_packs_up_while_writes_go_on(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    from committer.daemon.maintenance import ROLL_UP_AFTER, Maintenance

    maintenance = Maintenance(make_pipeline(layout).repo)
    started: list[int] = []
    monkeypatch.setattr(maintenance, "start", lambda: started.append(1))
    for _ in range(ROLL_UP_AFTER - 1):
        maintenance.committed()
        maintenance.tick()
    assert started == []  # never quiet, not enough commits yet
    maintenance.committed()
    maintenance.tick()
    assert started == [1]  # a commit a second never leaves a quiet minute: the packs are rolled up anyway
